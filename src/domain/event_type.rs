//! An event's hierarchical type (`ev`): `user.created`, `mailbox.deleted`, `forward added`.

use std::fmt;
use std::sync::Arc;

pub const MAX_TYPE_LEN: usize = 128;

/// Every event type WildDuck publishes (`lib/events.js`, 1.45): what a webhook subscribed to
/// each one by one lists, and what tests and benchmarks publish.
pub const WILDDUCK_EVENT_TYPES: [&str; 37] = [
    "dkim.created",
    "dkim.updated",
    "dkim.deleted",
    "cert.created",
    "cert.updated",
    "cert.deleted",
    "domainalias.created",
    "domainalias.deleted",
    "address.user.created",
    "address.user.deleted",
    "address.forwarded.created",
    "address.forwarded.deleted",
    "address.domain.renamed",
    "filter.deleted",
    "filter.created",
    "asp.created",
    "asp.deleted",
    "user.created",
    "user.password.changed",
    "user.delete.started",
    "user.delete.completed",
    "user.delete.cancelled",
    "autoreply.user.enabled",
    "autoreply.user.disabled",
    "mfa.totp.enabled",
    "mfa.totp.disabled",
    "mfa.custom.enabled",
    "mfa.custom.disabled",
    "mfa.webauthn.registered",
    "mfa.webauthn.removed",
    "mfa.disabled",
    "mailbox.created",
    "mailbox.renamed",
    "mailbox.deleted",
    "marked.spam",
    "marked.ham",
    "forward added",
];

/// A valid event type: 1–128 bytes, no `*`, no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(Arc<str>);

impl EventType {
    pub fn parse(text: &str) -> Result<EventType, String> {
        check_type_text(text)?;
        if text.contains('*') {
            return Err("must not contain '*'".into());
        }
        Ok(EventType(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rules event types and type patterns share.
pub(super) fn check_type_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > MAX_TYPE_LEN {
        return Err(format!("must be at most {MAX_TYPE_LEN} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventType({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_wildduck_types() {
        for ok in ["user.created", "marked.spam", "forward added", "a"] {
            assert_eq!(EventType::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_empty_long_starred_and_control() {
        assert_eq!(EventType::parse("").unwrap_err(), "must not be empty");
        assert_eq!(EventType::parse("user.*").unwrap_err(), "must not contain '*'");
        assert!(EventType::parse(&"a".repeat(129)).is_err());
        assert!(EventType::parse(&"a".repeat(128)).is_ok());
        assert!(EventType::parse("a\nb").is_err());
    }
}

//! The user a webhook is scoped to, or an event belongs to.
//!
//! WildDuck's users are MongoDB ObjectIds: 24 hex characters, which WildDuck compares case
//! insensitively and writes in lower case (`Joi.string().hex().lowercase().length(24)`,
//! `ObjectId.toString()`). So an ObjectId-shaped id is lowercased wherever it enters (the API,
//! the import, events from the stream and from BullMQ, records read back from Redis): a webhook
//! created for `5F1E…` gets the events of `5f1e…`.
//!
//! Webhooks take ObjectIds only ([`UserId::parse_object_id`], as WildDuck's API does). Events
//! from other producers may carry any user string of 1–128 bytes without control characters
//! ([`UserId::parse`]); such an event reaches global webhooks.

use std::fmt;
use std::sync::Arc;

pub const MAX_USER_LEN: usize = 128;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

impl UserId {
    /// Any user string an event may carry; an ObjectId-shaped one is lowercased.
    pub fn parse(text: &str) -> Result<UserId, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.len() > MAX_USER_LEN {
            return Err(format!("must be at most {MAX_USER_LEN} bytes"));
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if is_object_id(text) {
            return Ok(UserId(Arc::from(text.to_ascii_lowercase())));
        }
        Ok(UserId(Arc::from(text)))
    }

    /// A WildDuck user id: 24 hex characters in either case, kept in lower case.
    pub fn parse_object_id(text: &str) -> Result<UserId, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if !is_object_id(text) {
            return Err("must be a WildDuck user id: 24 hexadecimal characters".into());
        }
        Ok(UserId(Arc::from(text.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a WildDuck user id (an ObjectId), as every webhook's user is.
    pub fn is_object_id(&self) -> bool {
        is_object_id(&self.0)
    }
}

/// 24 hex characters, either case: how ObjectIds are written.
pub fn is_object_id(text: &str) -> bool {
    text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_lowercased_wherever_they_are_read() {
        let upper = "5F1E9D2C8B3A4E00AAAAAAAA";
        assert_eq!(UserId::parse(upper).unwrap().as_str(), "5f1e9d2c8b3a4e00aaaaaaaa");
        assert_eq!(
            UserId::parse_object_id(upper).unwrap(),
            UserId::parse("5f1e9d2c8b3a4e00aaaaaaaa").unwrap()
        );
        // Other users are not ObjectIds: they keep their case.
        assert_eq!(UserId::parse("Ann").unwrap().as_str(), "Ann");
        assert!(!UserId::parse("Ann").unwrap().is_object_id());
    }

    #[test]
    fn webhook_users_must_be_object_ids() {
        for bad in [
            "zzz",
            "5f1e9d2c8b3a4e00aaaaaaa",
            "5f1e9d2c8b3a4e00aaaaaaaaa",
            "5f1e9d2c8b3a4e00aaaaaaag",
        ] {
            assert_eq!(
                UserId::parse_object_id(bad).unwrap_err(),
                "must be a WildDuck user id: 24 hexadecimal characters",
                "{bad}"
            );
        }
        assert_eq!(UserId::parse_object_id("").unwrap_err(), "must not be empty");
    }
}

//! The name of one running hookrouter instance: in logs, in `/health` and `/instances`, in
//! the Redis keys of its membership and leases, and as its consumer name in the event stream's
//! group. Unique per instance: by default the host name plus a short random suffix, so two
//! instances on one host (or a restarted one, while its predecessor's leases expire) never
//! share a name.

use std::fmt;
use std::sync::Arc;

pub const MAX_INSTANCE_NAME_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceName(Arc<str>);

impl InstanceName {
    /// A configured name: 1–64 characters of letters, digits, `.`, `_` and `-`.
    pub fn parse(text: &str) -> Result<InstanceName, String> {
        if text.is_empty() || text.len() > MAX_INSTANCE_NAME_LEN {
            return Err(format!("must be 1 to {MAX_INSTANCE_NAME_LEN} characters"));
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err("may hold only letters, digits, '.', '_' and '-'".into());
        }
        Ok(InstanceName(Arc::from(text)))
    }

    /// `<host name>-<4 random hex digits>`, the host name cut to what a name may hold.
    pub fn generate() -> InstanceName {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let host: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(MAX_INSTANCE_NAME_LEN - 5)
            .collect();
        let host = if host.is_empty() {
            "hookrouter".to_string()
        } else {
            host
        };
        InstanceName(Arc::from(format!("{host}-{:04x}", rand::random::<u16>())))
    }

    /// The configured name, or a generated one when the setting is empty.
    pub fn from_setting(setting: &str) -> Result<InstanceName, String> {
        if setting.is_empty() {
            Ok(InstanceName::generate())
        } else {
            InstanceName::parse(setting)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_differ() {
        let a = InstanceName::generate();
        let b = InstanceName::generate();
        assert!(InstanceName::parse(a.as_str()).is_ok(), "{a}");
        assert_ne!(a, b, "two instances on one host get different names (odds 1 in 65536)");
    }

    #[test]
    fn configured_names_are_checked() {
        assert_eq!(InstanceName::parse("mx1-hooks").unwrap().as_str(), "mx1-hooks");
        assert!(InstanceName::parse("").is_err());
        assert!(InstanceName::parse("a b").is_err());
        assert!(InstanceName::parse("a:b").is_err(), "':' separates parts of Redis keys");
        assert!(InstanceName::parse(&"a".repeat(65)).is_err());
        assert!(InstanceName::from_setting("").is_ok());
    }
}

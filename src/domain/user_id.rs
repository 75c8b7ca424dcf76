//! The user a webhook is scoped to, or an event belongs to (WildDuck: a 24-hex ObjectId, but
//! any string of 1–128 bytes without control characters works).

use std::fmt;
use std::sync::Arc;

pub const MAX_USER_LEN: usize = 128;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

impl UserId {
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
        Ok(UserId(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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

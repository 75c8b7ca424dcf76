//! Reading request bodies and query strings into domain types, collecting every problem so one
//! 400 names them all (`details`: field → rule broken).
//!
//! WildDuck clients send `sess` (a session id for WildDuck's logs) and `ip` (the end user's
//! address) with every call. They are checked as WildDuck checks them (`sess` a string of 1–255
//! characters, `ip` an IPv4 or IPv6 address) and then dropped: hookrouter logs neither.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::errors::ApiError;

/// Parameters WildDuck clients may send to any call: checked, then dropped.
pub const SESSION_KEYS: &[&str] = &["sess", "ip"];

/// Longest `sess` WildDuck takes.
const MAX_SESS_CHARS: usize = 255;

/// The rule `value` breaks as `sess` or `ip`, if any.
fn check_session(key: &str, value: &Value) -> Option<String> {
    let Value::String(text) = value else {
        return Some("must be a string".into());
    };
    if text.is_empty() {
        return Some("must not be empty".into());
    }
    match key {
        "sess" if text.chars().count() > MAX_SESS_CHARS => Some(format!("must be at most {MAX_SESS_CHARS} characters")),
        "ip" if text.parse::<std::net::IpAddr>().is_err() => {
            Some("must be an IPv4 or IPv6 address (without a prefix length)".into())
        }
        _ => None,
    }
}

/// A body (or body and query parameters) being taken apart field by field.
pub struct Fields {
    map: Map<String, Value>,
    pub errors: BTreeMap<String, String>,
}

impl Fields {
    /// Accepts a JSON object whose keys are all in `allowed` or [`SESSION_KEYS`].
    pub fn object(value: Value, allowed: &[&str]) -> Result<Fields, ApiError> {
        let Value::Object(map) = value else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        Ok(Fields::new(map, allowed))
    }

    /// Takes parameters whose keys are all in `allowed` or [`SESSION_KEYS`] (checked, then
    /// dropped); any other key is an error.
    pub fn new(mut map: Map<String, Value>, allowed: &[&str]) -> Fields {
        let mut errors = BTreeMap::new();
        map.retain(|key, value| {
            if SESSION_KEYS.contains(&key.as_str()) {
                if let Some(rule) = check_session(key, value) {
                    errors.insert(key.clone(), rule);
                }
                return false;
            }
            if !allowed.contains(&key.as_str()) {
                errors.insert(key.clone(), "is not allowed".to_string());
            }
            true
        });
        Fields { map, errors }
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Parses `key` with `parse` when present; records its error under `key`.
    pub fn parse<T>(&mut self, key: &str, parse: impl FnOnce(Value) -> Result<T, String>) -> Option<T> {
        let value = self.take(key)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(rule) => {
                self.errors.insert(key.to_string(), rule);
                None
            }
        }
    }

    /// Like [`Fields::parse`], and records "is required" when `key` is missing.
    pub fn require<T>(&mut self, key: &str, parse: impl FnOnce(Value) -> Result<T, String>) -> Option<T> {
        if !self.map.contains_key(key) {
            self.errors.insert(key.to_string(), "is required".to_string());
            return None;
        }
        self.parse(key, parse)
    }

    /// Ok when nothing went wrong.
    pub fn finish(self) -> Result<(), ApiError> {
        finish(self.errors)
    }
}

fn finish(errors: BTreeMap<String, String>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InputValidation(errors))
    }
}

/// A string value, or the rule it broke.
pub fn string(value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err("must be a string".into()),
    }
}

/// Query parameters, read one by one with the same error collection. Values are strings, or
/// lists and objects when the query string says so (`type[]=a`, see [`super::params`]); those
/// are errors where a single value is expected.
pub struct Query {
    params: Map<String, Value>,
    pub errors: BTreeMap<String, String>,
}

impl Query {
    pub fn new(params: HashMap<String, String>) -> Query {
        Query::from_params(params.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
    }

    pub fn from_params(params: Map<String, Value>) -> Query {
        Query {
            params,
            errors: BTreeMap::new(),
        }
    }

    /// The text of `key`, if present and a single value (else an error is recorded).
    fn text(&mut self, key: &str) -> Option<String> {
        match self.params.get(key)? {
            Value::String(text) => Some(text.clone()),
            _ => {
                self.errors.insert(key.to_string(), "must be a single value".into());
                None
            }
        }
    }

    pub fn parse<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let value = self.text(key)?;
        match parse(&value) {
            Ok(parsed) => Some(parsed),
            Err(rule) => {
                self.errors.insert(key.to_string(), rule);
                None
            }
        }
    }

    /// Like [`Query::parse`], but an empty value (after trimming when `trim`) is no value,
    /// as WildDuck's `.empty('')` makes it.
    pub fn parse_unless_empty<T>(
        &mut self,
        key: &str,
        trim: bool,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.text(key)?;
        let value = if trim { value.trim() } else { value.as_str() };
        if value.is_empty() {
            return None;
        }
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(rule) => {
                self.errors.insert(key.to_string(), rule);
                None
            }
        }
    }

    /// An integer in `range`, `default` when absent.
    pub fn integer(&mut self, key: &str, range: std::ops::RangeInclusive<u64>, default: u64) -> u64 {
        let rule = format!("must be an integer from {} to {}", range.start(), range.end());
        self.parse(key, |text| {
            text.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or(rule)
        })
        .unwrap_or(default)
    }

    /// Checks `sess` and `ip` (see [`SESSION_KEYS`]).
    pub fn session(&mut self) {
        for key in SESSION_KEYS {
            if let Some(rule) = self.params.get(*key).and_then(|value| check_session(key, value)) {
                self.errors.insert(key.to_string(), rule);
            }
        }
    }

    /// Records "is not allowed" for every parameter but `allowed` and [`SESSION_KEYS`]
    /// (WildDuck's routes without `allowUnknown`).
    pub fn only(&mut self, allowed: &[&str]) {
        for key in self.params.keys() {
            if !allowed.contains(&key.as_str()) && !SESSION_KEYS.contains(&key.as_str()) {
                self.errors.insert(key.clone(), "is not allowed".into());
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        finish(self.errors)
    }
}

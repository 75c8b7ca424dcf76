//! Reading request bodies and query strings into domain types, collecting every problem so one
//! 400 names them all (`details`: field → rule broken).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::errors::ApiError;

/// A JSON object body being taken apart field by field.
pub struct Fields {
    map: Map<String, Value>,
    pub errors: BTreeMap<String, String>,
}

impl Fields {
    /// Accepts an object whose keys are all in `allowed` or `ignored` (dropped unread).
    pub fn object(value: Value, allowed: &[&str], ignored: &[&str]) -> Result<Fields, ApiError> {
        let Value::Object(mut map) = value else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        let mut errors = BTreeMap::new();
        map.retain(|key, _| {
            if ignored.contains(&key.as_str()) {
                return false;
            }
            if !allowed.contains(&key.as_str()) {
                errors.insert(key.clone(), "is not allowed".to_string());
            }
            true
        });
        Ok(Fields { map, errors })
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
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InputValidation(self.errors))
        }
    }
}

/// A string value, or the rule it broke.
pub fn string(value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err("must be a string".into()),
    }
}

/// Query parameters, read one by one with the same error collection.
pub struct Query {
    params: HashMap<String, String>,
    pub errors: BTreeMap<String, String>,
}

impl Query {
    pub fn new(params: HashMap<String, String>) -> Query {
        Query {
            params,
            errors: BTreeMap::new(),
        }
    }

    pub fn parse<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let value = self.params.get(key)?;
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

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InputValidation(self.errors))
        }
    }
}

//! The fields of a webhook as clients send them, read from JSON values into domain types.
//!
//! Two edges take webhooks from outside: the REST API (`POST`/`PUT /webhooks`) and the WildDuck
//! import (`hookrouter import-wildduck`). Both read the same fields with these functions, so a
//! webhook the API would refuse cannot be imported, and the other way round. Each returns the
//! rule a bad value broke, for the caller to file under the field's name.
//!
//! Type patterns are trimmed and lowercased before they are parsed, as WildDuck's API does
//! (`Joi.string().trim().lowercase()`); [`normalize_type`] is that one rule, also applied to the
//! list filters `type` and `event`. Event types (`ev`) keep their case: see docs/wildduck.md.

use serde_json::Value;

use super::{TypePattern, UserId, WebhookUrl};

/// Patterns one webhook may list.
pub const MAX_TYPES: usize = 32;

/// A type pattern or type filter as WildDuck stores it: trimmed and lowercased.
pub fn normalize_type(text: &str) -> String {
    text.trim().to_lowercase()
}

/// `type`: a list of 1–32 patterns (a single string is taken as a list of one); duplicates are
/// dropped, order is kept.
pub fn parse_types(value: Value) -> Result<Vec<TypePattern>, String> {
    let items = match value {
        Value::Array(items) => items,
        Value::String(one) => vec![Value::String(one)],
        _ => return Err("must be a list of event type patterns".into()),
    };
    if items.is_empty() || items.len() > MAX_TYPES {
        return Err(format!("must list 1 to {MAX_TYPES} event type patterns"));
    }
    let mut patterns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(format!("item {i} must be a string"));
        };
        let pattern =
            TypePattern::parse(&normalize_type(text)).map_err(|rule| format!("item {i} ({text:?}) {rule}"))?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

/// `url`: an http(s) URL (trimmed). The SSRF guard is a separate, asynchronous check.
pub fn parse_url(value: Value) -> Result<WebhookUrl, String> {
    match value {
        Value::String(text) => WebhookUrl::parse(text.trim()),
        _ => Err("must be a string".into()),
    }
}

/// `user`: a user id, or null for a global webhook.
pub fn parse_user(value: Value) -> Result<Option<UserId>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(user) => UserId::parse(&user).map(Some),
        _ => Err("must be a string or null".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(value: Value) -> Vec<String> {
        parse_types(value).unwrap().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn patterns_are_trimmed_lowercased_and_deduplicated() {
        assert_eq!(
            texts(json!([" User.* ", "MARKED.spam", "user.*", "Forward Added"])),
            ["user.*", "marked.spam", "forward added"]
        );
        assert_eq!(texts(json!("Mailbox.Created")), ["mailbox.created"]);
    }

    #[test]
    fn bad_type_lists_say_which_item_and_rule() {
        assert_eq!(
            parse_types(json!([])).unwrap_err(),
            "must list 1 to 32 event type patterns"
        );
        assert_eq!(
            parse_types(json!(5)).unwrap_err(),
            "must be a list of event type patterns"
        );
        assert_eq!(parse_types(json!(["a", 5])).unwrap_err(), "item 1 must be a string");
        assert!(parse_types(json!(["a*"]))
            .unwrap_err()
            .starts_with("item 0 (\"a*\") '*' may only"));
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        assert!(parse_types(json!(many)).is_err());
    }

    #[test]
    fn url_and_user_rules() {
        assert_eq!(
            parse_url(json!(" https://example.com/h ")).unwrap().as_str(),
            "https://example.com/h"
        );
        assert_eq!(
            parse_url(json!("smtp://example.com")).unwrap_err(),
            "must use http or https"
        );
        assert_eq!(parse_url(json!(1)).unwrap_err(), "must be a string");
        assert_eq!(parse_user(json!(null)).unwrap(), None);
        assert_eq!(parse_user(json!("u1")).unwrap().unwrap().as_str(), "u1");
        assert_eq!(parse_user(json!(7)).unwrap_err(), "must be a string or null");
    }
}

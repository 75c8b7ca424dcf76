//! The fields of a webhook as clients send them, read from JSON values into domain types.
//!
//! Two edges take webhooks from outside: the REST API (`POST`/`PUT /webhooks`) and the WildDuck
//! import (`hookrouter import-wildduck`). Both read the same fields with these functions, so a
//! webhook the API would refuse cannot be imported, and the other way round. Each returns the
//! rule a bad value broke, for the caller to file under the field's name.
//!
//! Type patterns are trimmed and lowercased before they are parsed, as WildDuck's API does
//! (`Joi.string().trim().lowercase()`); [`normalize_type`] is that one rule. Users are WildDuck
//! user ids, lowercased ([`UserId::parse_object_id`]). Event types (`ev`) keep their case: see
//! docs/wildduck.md.

use serde_json::Value;

use super::{TypePattern, UserId, WebhookUrl};

/// Patterns one webhook may list: every event name WildDuck publishes (37) with room to spare.
/// WildDuck sets no limit; routing cost does not grow with it (see [`crate::routing`]).
pub const MAX_TYPES: usize = 256;

/// A type pattern as WildDuck stores it: trimmed and lowercased.
pub fn normalize_type(text: &str) -> String {
    text.trim().to_lowercase()
}

/// `type`: a list of 1–256 patterns, each trimmed and lowercased, kept in the order and with
/// the repeats given, as WildDuck keeps them (routing counts each pattern once). A single
/// string is not a list: WildDuck refuses it too (`Joi.array()`).
pub fn parse_types(value: Value) -> Result<Vec<TypePattern>, String> {
    let Value::Array(items) = value else {
        return Err("must be a list (JSON array, or type[]= in a form) of event type patterns".into());
    };
    if items.is_empty() || items.len() > MAX_TYPES {
        return Err(format!(
            "must list 1 to {MAX_TYPES} event type patterns (has {})",
            items.len()
        ));
    }
    let mut patterns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(format!("item {i} must be a string"));
        };
        let pattern =
            TypePattern::parse(&normalize_type(text)).map_err(|rule| format!("item {i} ({text:?}) {rule}"))?;
        patterns.push(pattern);
    }
    Ok(patterns)
}

/// `url`: an http(s) URL, as given. The SSRF guard is a separate, asynchronous check.
pub fn parse_url(value: Value) -> Result<WebhookUrl, String> {
    match value {
        Value::String(text) => WebhookUrl::parse(&text),
        _ => Err("must be a string".into()),
    }
}

/// `user`: a WildDuck user id (24 hex characters, kept lowercased).
pub fn parse_user(value: Value) -> Result<UserId, String> {
    match value {
        Value::String(user) => UserId::parse_object_id(&user),
        _ => Err("must be a string: a WildDuck user id (24 hexadecimal characters)".into()),
    }
}

/// `user` where null means "global" (`PUT /webhooks/{id}`, and WildDuck's records).
pub fn parse_user_or_null(value: Value) -> Result<Option<UserId>, String> {
    match value {
        Value::Null => Ok(None),
        other => parse_user(other).map(Some),
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
    fn patterns_are_trimmed_lowercased_and_kept_as_given() {
        assert_eq!(
            texts(json!([" User.* ", "MARKED.spam", "user.*", "Forward Added"])),
            ["user.*", "marked.spam", "user.*", "forward added"]
        );
    }

    #[test]
    fn bad_type_lists_say_which_item_and_rule() {
        assert_eq!(
            parse_types(json!([])).unwrap_err(),
            "must list 1 to 256 event type patterns (has 0)"
        );
        for not_a_list in [json!(5), json!("user.*")] {
            assert_eq!(
                parse_types(not_a_list).unwrap_err(),
                "must be a list (JSON array, or type[]= in a form) of event type patterns"
            );
        }
        assert_eq!(parse_types(json!(["a", 5])).unwrap_err(), "item 1 must be a string");
        assert!(parse_types(json!(["a*"]))
            .unwrap_err()
            .starts_with("item 0 (\"a*\") '*' may only"));
        let most: Vec<String> = (0..256).map(|i| format!("t{i}")).collect();
        assert_eq!(parse_types(json!(most)).unwrap().len(), 256);
        let many: Vec<String> = (0..257).map(|i| format!("t{i}")).collect();
        assert!(parse_types(json!(many)).unwrap_err().contains("(has 257)"));
    }

    #[test]
    fn url_and_user_rules() {
        assert_eq!(
            parse_url(json!("HTTPS://Example.com/h")).unwrap().as_str(),
            "HTTPS://Example.com/h",
            "kept as given"
        );
        assert!(parse_url(json!(" https://example.com/h")).is_err());
        assert_eq!(
            parse_url(json!("smtp://example.com")).unwrap_err(),
            "must use http or https"
        );
        assert_eq!(parse_url(json!(1)).unwrap_err(), "must be a string");
        assert_eq!(parse_user_or_null(json!(null)).unwrap(), None);
        assert!(parse_user(json!(null)).unwrap_err().starts_with("must be a string"));
        assert_eq!(
            parse_user(json!("5F1E9D2C8B3A4E0012345678")).unwrap().as_str(),
            "5f1e9d2c8b3a4e0012345678"
        );
        assert!(parse_user(json!("zzz")).unwrap_err().contains("24 hexadecimal"));
        assert!(parse_user(json!(7)).unwrap_err().starts_with("must be a string"));
    }
}

//! Reading a `mongoexport` of WildDuck's `webhooks` collection.
//!
//! `mongoexport` writes one document per line, or a JSON array with `--jsonArray`, in MongoDB
//! Extended JSON: relaxed by default (`{"$date": "2024-05-13T10:11:12.345Z"}`), canonical with
//! `--jsonFormat=canonical` (`{"$date": {"$numberLong": "1715595072345"}}`). Both are read,
//! as are plain values where Extended JSON would have a wrapper (`"_id": "<24 hex>"`).
//!
//! A WildDuck webhook is `{_id: ObjectId, type: [patterns], user: ObjectId | null, url,
//! created: Date}`. Each field goes through the same parser as the API's (see
//! [`crate::domain::parse_types`]), so the import refuses exactly what the API would.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::{parse_types, parse_url, parse_user_or_null, TypePattern, UserId, WebhookId, WebhookUrl};

/// One document of the export and where it was.
#[derive(Debug)]
pub struct Document {
    /// `line 4` (JSON lines) or `item 4` (a JSON array), 1-based.
    pub position: String,
    /// The document, or why it could not be read as JSON.
    pub value: Result<Value, String>,
}

/// The documents of an export file's text: a JSON array, or one document per line.
pub fn documents(text: &str) -> Result<Vec<Document>, String> {
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| format!("the file starts with '[' but is not a JSON array ({e})"))?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, value)| Document {
                position: format!("item {}", i + 1),
                value: Ok(value),
            })
            .collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| Document {
            position: format!("line {}", i + 1),
            value: serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})")),
        })
        .collect())
}

/// A WildDuck webhook, read and checked field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct WildDuckWebhook {
    pub id: WebhookId,
    pub types: Vec<TypePattern>,
    pub user: Option<UserId>,
    pub url: WebhookUrl,
    pub created_ms: u64,
}

/// What is wrong with a document: each field and the rule it broke.
pub type Problems = Vec<(&'static str, String)>;

impl WildDuckWebhook {
    /// Reads a document; every bad field is named, not just the first.
    pub fn read(document: Value) -> Result<WildDuckWebhook, Problems> {
        let Value::Object(mut fields) = document else {
            return Err(vec![("document", "must be a JSON object".into())]);
        };
        let mut problems = Problems::new();
        let p = &mut problems;
        let id = note(p, "_id", required(&mut fields, "_id").and_then(object_id));
        let types = note(p, "type", required(&mut fields, "type").and_then(parse_types));
        let url = note(p, "url", required(&mut fields, "url").and_then(parse_url));
        let user = note(
            p,
            "user",
            fields
                .remove("user")
                .map_or(Ok(None), |user| parse_user_or_null(unwrap_oid(user))),
        );
        let created = note(p, "created", fields.remove("created").map(date_ms).transpose());
        match (id, types, url, user, created) {
            (Some(id), Some(types), Some(url), Some(user), Some(created)) => Ok(WildDuckWebhook {
                id,
                types,
                user,
                url,
                // No `created`: the ObjectId says when the webhook was made.
                created_ms: created.unwrap_or_else(|| id.created_ms()),
            }),
            _ => Err(problems),
        }
    }
}

/// A document's `_id` as text, when it has a readable one (to name refused records).
pub fn peek_id(document: &Value) -> Option<String> {
    match unwrap_oid(document.get("_id")?.clone()) {
        Value::String(id) => Some(id),
        _ => None,
    }
}

/// The value, or None with the rule it broke filed under `field`.
fn note<T>(problems: &mut Problems, field: &'static str, value: Result<T, String>) -> Option<T> {
    value.map_err(|rule| problems.push((field, rule))).ok()
}

fn required(fields: &mut Map<String, Value>, name: &str) -> Result<Value, String> {
    match fields.remove(name) {
        None | Some(Value::Null) => Err("is required".into()),
        Some(value) => Ok(value),
    }
}

/// `{"$oid": "…"}` becomes its string; anything else is left as it is.
fn unwrap_oid(value: Value) -> Value {
    match value {
        Value::Object(mut wrapper) if wrapper.len() == 1 && wrapper.contains_key("$oid") => {
            wrapper.remove("$oid").unwrap_or(Value::Null)
        }
        other => other,
    }
}

fn object_id(value: Value) -> Result<WebhookId, String> {
    match unwrap_oid(value) {
        Value::String(hex) => WebhookId::parse(&hex).ok_or_else(|| "must be an ObjectId (24 hex characters)".into()),
        _ => Err("must be an ObjectId ({\"$oid\": \"<24 hex>\"})".into()),
    }
}

/// A date in any of mongoexport's forms, in ms since the epoch.
fn date_ms(value: Value) -> Result<u64, String> {
    let rule =
        || "must be a date ({\"$date\": \"<ISO 8601>\"} or {\"$date\": {\"$numberLong\": \"<ms>\"}})".to_string();
    let inner = match value {
        Value::Object(mut wrapper) if wrapper.contains_key("$date") => wrapper.remove("$date").unwrap_or(Value::Null),
        // A bare ISO string (hand-made exports).
        Value::String(text) => Value::String(text),
        _ => return Err(rule()),
    };
    let ms: i128 = match inner {
        Value::String(text) => OffsetDateTime::parse(&text, &Rfc3339)
            .map_err(|e| format!("must be an ISO 8601 date ({e})"))?
            .unix_timestamp_nanos()
            .div_euclid(1_000_000),
        Value::Number(n) => n.as_i64().map(i128::from).ok_or_else(rule)?,
        Value::Object(long) => long
            .get("$numberLong")
            .and_then(Value::as_str)
            .and_then(|digits| digits.parse::<i64>().ok())
            .map(i128::from)
            .ok_or_else(rule)?,
        _ => return Err(rule()),
    };
    u64::try_from(ms).map_err(|_| "must not be before 1970".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_canonical_and_relaxed_documents_alike() {
        let relaxed = json!({"_id": {"$oid": "5f1e9d2c8b3a4e0012345678"}, "type": ["User.*", "marked.spam"],
            "user": {"$oid": "5f1e9d2c8b3a4e00aaaaaaaa"}, "url": "https://example.com/h",
            "created": {"$date": "2020-07-27T09:30:20.123Z"}});
        let canonical = json!({"_id": {"$oid": "5f1e9d2c8b3a4e0012345678"}, "type": ["user.*", "marked.spam"],
            "user": {"$oid": "5f1e9d2c8b3a4e00aaaaaaaa"}, "url": "https://example.com/h",
            "created": {"$date": {"$numberLong": "1595842220123"}}});
        let a = WildDuckWebhook::read(relaxed).unwrap();
        assert_eq!(a, WildDuckWebhook::read(canonical).unwrap());
        assert_eq!(a.created_ms, 1_595_842_220_123);
        assert_eq!(a.types[0].to_string(), "user.*");
        assert_eq!(a.user.unwrap().as_str(), "5f1e9d2c8b3a4e00aaaaaaaa");
    }

    #[test]
    fn upper_case_object_ids_are_lowercased() {
        let hook = WildDuckWebhook::read(json!({"_id": {"$oid": "5F1E9D2C8B3A4E0012345678"}, "type": ["*"],
            "user": "5F1E9D2C8B3A4E00AAAAAAAA", "url": "https://example.com/h"}))
        .unwrap();
        assert_eq!(hook.id.to_string(), "5f1e9d2c8b3a4e0012345678");
        assert_eq!(hook.user.unwrap().as_str(), "5f1e9d2c8b3a4e00aaaaaaaa");
    }

    #[test]
    fn global_webhooks_and_missing_dates() {
        let hook = WildDuckWebhook::read(json!({"_id": "5f1e9d2c8b3a4e0012345678", "type": ["*"],
            "user": null, "url": "http://example.com/"}))
        .unwrap();
        assert_eq!(hook.user, None);
        assert_eq!(hook.created_ms, 0x5f1e9d2c * 1000);
    }

    #[test]
    fn every_bad_field_is_named() {
        let problems = WildDuckWebhook::read(json!({"_id": {"$oid": "nope"}, "type": ["a*"],
            "url": "smtp://mail.example.com", "user": 5, "created": {"$date": "yesterday"}}))
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, ["_id", "type", "url", "user", "created"]);
        assert_eq!(problems[2].1, "must use http or https");
        let missing = WildDuckWebhook::read(json!({"_id": {"$oid": "5f1e9d2c8b3a4e0012345678"}})).unwrap_err();
        assert_eq!(
            missing,
            [("type", "is required".to_string()), ("url", "is required".to_string())]
        );
    }

    #[test]
    fn lines_and_arrays() {
        let lines = documents("{\"a\":1}\n\n{oops\n{\"b\":2}\n").unwrap();
        let positions: Vec<&str> = lines.iter().map(|d| d.position.as_str()).collect();
        assert_eq!(positions, ["line 1", "line 3", "line 4"]);
        assert!(lines[1].value.as_ref().unwrap_err().starts_with("not valid JSON"));
        let array = documents(" [{\"a\":1},{\"b\":2}]").unwrap();
        assert_eq!(array[1].position, "item 2");
        assert!(documents("[{\"a\":1},").unwrap_err().contains("not a JSON array"));
    }
}

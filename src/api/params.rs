//! Request parameters read the way WildDuck's API reads them.
//!
//! WildDuck (restify) parses query strings and `application/x-www-form-urlencoded` bodies with
//! `qs`, and merges query, path and body parameters into one set before validating it. So
//! `type[]=a&type[]=b`, `type=a&type=b` and `type[0]=a&type[1]=b` are each the list
//! `["a", "b"]`, a lone `type=a` is the string `"a"`, and `user[x]=1` is an object. [`parse`]
//! does the same for the cases clients use (flat keys, `[]`, `[n]` and `[name]`, one level
//! deep); values are always strings. [`body`] reads a JSON object or such a form; an empty
//! body is no parameters, as there.
//!
//! The access token a request carried as `accessToken` is not a parameter (WildDuck deletes it
//! before validating), so [`without_token`] drops it.

use actix_web::http::header;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use super::errors::ApiError;

/// The query parameter that carries an access token.
pub const ACCESS_TOKEN: &str = "accessToken";

/// A query string or form body as `qs` reads it.
pub fn parse(text: &str) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    // `[n]` items, kept apart until every pair is read, then put in index order.
    let mut indexed: Vec<(String, u64, String)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let (key, value) = (key.into_owned(), value.into_owned());
        match split_key(&key) {
            Some((base, "")) => push(&mut out, base, Value::String(value)),
            Some((base, inner)) => match inner.parse::<u64>() {
                Ok(index) => indexed.push((base.to_string(), index, value)),
                Err(_) => {
                    let slot = out.entry(base.to_string()).or_insert_with(|| Value::Object(Map::new()));
                    match slot {
                        Value::Object(members) => {
                            members.insert(inner.to_string(), Value::String(value));
                        }
                        // `a=1&a[b]=2`: qs keeps both; a string and an object cannot merge here,
                        // and either way the value is not a plain string.
                        other => *other = Value::Array(vec![other.take(), Value::String(value)]),
                    }
                }
            },
            None if out.contains_key(&key) => push(&mut out, &key, Value::String(value)),
            None => {
                out.insert(key, Value::String(value));
            }
        }
    }
    indexed.sort_by_key(|(_, index, _)| *index);
    for (base, _, value) in indexed {
        push(&mut out, &base, Value::String(value));
    }
    out
}

/// `name[inner]` → `(name, inner)`; None for a plain key.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let open = key.find('[')?;
    let inner = key[open + 1..].strip_suffix(']')?;
    (open > 0 && !inner.contains(['[', ']'])).then(|| (&key[..open], inner))
}

/// Adds `value` to the list under `key`, making one of a single value already there.
fn push(out: &mut Map<String, Value>, key: &str, value: Value) {
    match out.get_mut(key) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
        None => {
            out.insert(key.to_string(), Value::Array(vec![value]));
        }
    }
}

/// The parameters without the access token.
pub fn without_token(mut params: Map<String, Value>) -> Map<String, Value> {
    params.shift_remove(ACCESS_TOKEN);
    params
}

/// `user: "me"` stands for the caller's own user when its WildDuck token belongs to a WildDuck
/// user (`api.js` rewrites `req.params.user` so); with any other token it stays `"me"`.
pub fn me(params: &mut Map<String, Value>, own: Option<&str>) {
    if let (Some(own), Some(user)) = (own, params.get_mut("user")) {
        if user == "me" {
            *user = Value::String(own.to_string());
        }
    }
}

/// A request body's parameters: a JSON object, or a form when the content type says so;
/// nothing for an empty body.
pub fn body(request: &HttpRequest, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if form {
        let text = std::str::from_utf8(bytes).map_err(|_| ApiError::invalid("body", "must be UTF-8"))?;
        return Ok(parse(text));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("body", "must be a JSON object")),
        Err(e) => Err(ApiError::invalid(
            "body",
            format!("must be valid JSON or application/x-www-form-urlencoded ({e})"),
        )),
    }
}

/// Body and query parameters in one set, as WildDuck merges them: a query parameter wins over
/// a body field of the same name (restify's `overrideParams: false`).
pub fn merged(request: &HttpRequest, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut params = body(request, bytes)?;
    for (key, value) in parse(request.query_string()) {
        params.insert(key, value);
    }
    Ok(without_token(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(text: &str) -> Value {
        Value::Object(parse(text))
    }

    #[test]
    fn lists_come_from_brackets_indexes_or_repeats() {
        let list = json!({"type": ["user.*", "marked.spam"], "url": "https://x/h"});
        assert_eq!(parsed("type[]=user.*&type[]=marked.spam&url=https%3A%2F%2Fx%2Fh"), list);
        assert_eq!(parsed("type=user.*&type=marked.spam&url=https://x/h"), list);
        assert_eq!(parsed("type[1]=marked.spam&type[0]=user.*&url=https://x/h"), list);
        assert_eq!(parsed("type%5B%5D=user.*&type%5B%5D=marked.spam&url=https://x/h"), list);
        assert_eq!(parsed("type[]=forward+added"), json!({"type": ["forward added"]}));
    }

    #[test]
    fn a_lone_value_is_a_string_and_names_make_objects() {
        assert_eq!(parsed("type=user.*"), json!({"type": "user.*"}));
        assert_eq!(
            parsed("user[id]=1&empty=&flag"),
            json!({"user": {"id": "1"}, "empty": "", "flag": ""})
        );
        assert_eq!(parsed(""), json!({}));
        assert_eq!(
            parsed("[x]=1"),
            json!({"[x]": "1"}),
            "no name before the bracket: a plain key"
        );
    }
}

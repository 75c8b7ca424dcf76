//! Opaque list cursors: `next`/`previous` values a client passes back unchanged.
//!
//! A webhook list cursor is the base64url of `n:<id>` (the page after webhook `<id>`) or
//! `p:<id>` (the page before it). Ids sort by creation time, so pages stay stable while
//! webhooks are added. A history cursor (attempts, dead letters, rejected entries) is the
//! base64url of `s:<stream entry id>`: the page of entries older than that one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::{StreamId, WebhookId};
use crate::store::ListDirection;

pub fn encode(direction: ListDirection, id: &WebhookId) -> String {
    let tag = match direction {
        ListDirection::Next => 'n',
        ListDirection::Previous => 'p',
    };
    URL_SAFE_NO_PAD.encode(format!("{tag}:{id}"))
}

pub fn decode(cursor: &str) -> Option<(ListDirection, WebhookId)> {
    let (tag, id) = open(cursor)?;
    let direction = match tag.as_str() {
        "n" => ListDirection::Next,
        "p" => ListDirection::Previous,
        _ => return None,
    };
    Some((direction, WebhookId::parse(&id)?))
}

pub fn encode_entry(id: &StreamId) -> String {
    URL_SAFE_NO_PAD.encode(format!("s:{id}"))
}

pub fn decode_entry(cursor: &str) -> Option<StreamId> {
    match open(cursor)? {
        (tag, id) if tag == "s" => StreamId::parse(&id),
        _ => None,
    }
}

fn open(cursor: &str) -> Option<(String, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (tag, rest) = text.split_once(':')?;
    Some((tag.to_string(), rest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let id = WebhookId::generate();
        assert_eq!(
            decode(&encode(ListDirection::Next, &id)),
            Some((ListDirection::Next, id))
        );
        assert_eq!(
            decode(&encode(ListDirection::Previous, &id)),
            Some((ListDirection::Previous, id))
        );
        assert_eq!(decode("not-a-cursor"), None);
        assert_eq!(decode(""), None);
        let entry = StreamId { ms: 17, seq: 2 };
        assert_eq!(decode_entry(&encode_entry(&entry)), Some(entry));
        assert_eq!(decode_entry(&encode(ListDirection::Next, &id)), None);
    }
}

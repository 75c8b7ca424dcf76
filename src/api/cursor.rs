//! Opaque list cursors: `next`/`previous` values a client passes back unchanged.
//!
//! A webhook list cursor is the base64url of `n:<id>` (the page after webhook `<id>`) or
//! `p:<id>` (the page before it). Ids sort by creation time, so pages stay stable while
//! webhooks are added. A history cursor (attempts, dead letters, rejected entries) is the
//! base64url of `s:<stream entry id>`: the page of entries older than that one; or, in the
//! attempt log, whose entries hold one flush each, `s:<stream entry id>/<n>`: the first `n`
//! attempts of that entry, then the older entries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::{StreamId, WebhookId};
use crate::store::{HistoryCursor, ListDirection};

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

pub fn encode_entry(cursor: &HistoryCursor) -> String {
    match cursor.within {
        Some(within) => URL_SAFE_NO_PAD.encode(format!("s:{}/{within}", cursor.entry)),
        None => URL_SAFE_NO_PAD.encode(format!("s:{}", cursor.entry)),
    }
}

pub fn decode_entry(cursor: &str) -> Option<HistoryCursor> {
    let (tag, rest) = open(cursor)?;
    if tag != "s" {
        return None;
    }
    let (entry, within) = match rest.split_once('/') {
        Some((entry, within)) => (entry, Some(within.parse().ok()?)),
        None => (rest.as_str(), None),
    };
    Some(HistoryCursor {
        entry: StreamId::parse(entry)?,
        within,
    })
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
        for within in [None, Some(0), Some(7)] {
            let cursor = HistoryCursor { entry, within };
            assert_eq!(decode_entry(&encode_entry(&cursor)), Some(cursor));
        }
        assert_eq!(decode_entry(&URL_SAFE_NO_PAD.encode("s:17-2/x")), None);
        assert_eq!(decode_entry(&encode(ListDirection::Next, &id)), None);
    }
}

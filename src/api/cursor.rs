//! Opaque list cursors: `next`/`previous` values a client passes back unchanged.
//!
//! A webhook list cursor is the base64url of `n:<id>:<page>` (the page after webhook `<id>`)
//! or `p:<id>:<page>` (the page before it), `<page>` being that page's number (as WildDuck's
//! cursors carry it, so clients need not count pages; older cursors have none). Which way a
//! cursor goes is the parameter's choice (`next` or `previous`), as with WildDuck's cursors,
//! which hold only a position. Ids sort by creation time, so pages stay stable while webhooks
//! are added. A history cursor (attempts, dead letters, rejected entries) is the
//! base64url of `s:<stream entry id>`: the page of entries older than that one; or, in the
//! attempt log, whose entries hold one flush each, `s:<stream entry id>/<n>`: the first `n`
//! attempts of that entry, then the older entries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::{StreamId, WebhookId};
use crate::store::{HistoryCursor, ListDirection};

/// A position in the webhook list, and the number of the page it leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub id: WebhookId,
    pub page: Option<u64>,
}

pub fn encode(direction: ListDirection, id: &WebhookId, page: u64) -> String {
    let tag = match direction {
        ListDirection::Next => 'n',
        ListDirection::Previous => 'p',
    };
    URL_SAFE_NO_PAD.encode(format!("{tag}:{id}:{page}"))
}

pub fn decode(cursor: &str) -> Option<ListCursor> {
    let (tag, rest) = open(cursor)?;
    if tag != "n" && tag != "p" {
        return None;
    }
    let (id, page) = match rest.split_once(':') {
        Some((id, page)) => (id, Some(page.parse().ok()?)),
        None => (rest.as_str(), None),
    };
    Some(ListCursor {
        id: WebhookId::parse(id)?,
        page,
    })
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
        for direction in [ListDirection::Next, ListDirection::Previous] {
            assert_eq!(
                decode(&encode(direction, &id, 3)),
                Some(ListCursor { id, page: Some(3) })
            );
        }
        let older = URL_SAFE_NO_PAD.encode(format!("n:{id}"));
        assert_eq!(decode(&older), Some(ListCursor { id, page: None }));
        assert_eq!(decode("not-a-cursor"), None);
        assert_eq!(decode(""), None);
        let entry = StreamId { ms: 17, seq: 2 };
        for within in [None, Some(0), Some(7)] {
            let cursor = HistoryCursor { entry, within };
            assert_eq!(decode_entry(&encode_entry(&cursor)), Some(cursor));
        }
        assert_eq!(decode_entry(&URL_SAFE_NO_PAD.encode("s:17-2/x")), None);
        assert_eq!(decode_entry(&encode(ListDirection::Next, &id, 1)), None);
    }
}

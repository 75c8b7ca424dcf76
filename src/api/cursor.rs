//! Opaque list cursors: `next`/`previous` values a client passes back unchanged.
//!
//! A cursor is the base64url of `n:<id>` (the page after webhook `<id>`) or `p:<id>` (the page
//! before it). Ids sort by creation time, so pages stay stable while webhooks are added.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::WebhookId;
use crate::store::ListDirection;

pub fn encode(direction: ListDirection, id: &WebhookId) -> String {
    let tag = match direction {
        ListDirection::Next => 'n',
        ListDirection::Previous => 'p',
    };
    URL_SAFE_NO_PAD.encode(format!("{tag}:{id}"))
}

pub fn decode(cursor: &str) -> Option<(ListDirection, WebhookId)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (tag, id) = text.split_once(':')?;
    let direction = match tag {
        "n" => ListDirection::Next,
        "p" => ListDirection::Previous,
        _ => return None,
    };
    Some((direction, WebhookId::parse(id)?))
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
    }
}

//! Events as producers write them, and as deliveries send them.
//!
//! A producer's event is a JSON object: `ev` (the type), optional `time` (ms since epoch),
//! optional `user`, and any other fields, which pass through untouched and in order. `id` is
//! reserved for the delivery id; an event's own `id` field is dropped. Two changes are made,
//! both as WildDuck makes them:
//!
//! - a `user` that is an ObjectId (24 hex) is lowercased, in routing and in the body, so
//!   `5F1E…` reaches the webhooks of `5f1e…` (see [`UserId`]);
//! - `marked.spam` and `marked.ham` carry the message's IMAP uid as `id` when WildDuck publishes
//!   them; WildDuck's worker moves it into `message` (replacing the message's ObjectId) and
//!   drops `id`, so receivers written for WildDuck read the uid in `message`. Without an `id`,
//!   `message` goes too, as there. See [`shape_marked`].
//!
//! [`PreparedEvent`] is an event ready to deliver: its JSON body is serialized once, minus the
//! leading `"id"` member, and shared (behind an `Arc`) by every webhook it goes to. Each
//! delivery only prepends its own id.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

use super::{DeliveryId, EventType, StreamId, UserId};

/// Why an event was refused. The text is what operators read in the rejected list and what
/// API clients read in `details`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct EventError {
    /// Which part of the event is wrong (`event`, `ev`, `time`, `user`).
    pub field: &'static str,
    pub rule: String,
}

impl EventError {
    fn new(field: &'static str, rule: impl Into<String>) -> EventError {
        EventError {
            field,
            rule: rule.into(),
        }
    }
}

/// A validated event, before it is routed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ev: EventType,
    /// ms since epoch, when the producer gave one.
    pub time: Option<i64>,
    pub user: Option<UserId>,
    /// Every member but `id`, `time` and `ev`, in the producer's order (`user` included).
    fields: Map<String, Value>,
}

impl Event {
    /// Parses the raw bytes of a stream entry's `event` field.
    pub fn parse(raw: &[u8], max_bytes: usize) -> Result<Event, EventError> {
        if raw.len() > max_bytes {
            return Err(EventError::new(
                "event",
                format!("is {} bytes, larger than the limit of {max_bytes}", raw.len()),
            ));
        }
        let text = std::str::from_utf8(raw).map_err(|_| EventError::new("event", "is not valid UTF-8"))?;
        let value: Value =
            serde_json::from_str(text).map_err(|e| EventError::new("event", format!("is not valid JSON ({e})")))?;
        Event::from_value(value)
    }

    /// Validates an already parsed JSON value (`POST /events`).
    pub fn from_value(value: Value) -> Result<Event, EventError> {
        let Value::Object(mut fields) = value else {
            return Err(EventError::new("event", "must be a JSON object"));
        };
        let ev = match fields.shift_remove("ev") {
            None | Some(Value::Null) => return Err(EventError::new("ev", "is required")),
            Some(Value::String(ev)) => EventType::parse(&ev).map_err(|rule| EventError::new("ev", rule))?,
            Some(_) => return Err(EventError::new("ev", "must be a string")),
        };
        let time = match fields.shift_remove("time") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(ms) if ms >= 0 => Some(ms),
                _ => {
                    return Err(EventError::new(
                        "time",
                        "must be a non-negative integer (ms since epoch)",
                    ))
                }
            },
            Some(_) => {
                return Err(EventError::new(
                    "time",
                    "must be a non-negative integer (ms since epoch)",
                ))
            }
        };
        let user = match fields.get_mut("user") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                let user = UserId::parse(text).map_err(|rule| EventError::new("user", rule))?;
                if user.as_str() != text {
                    *text = user.as_str().to_string();
                }
                Some(user)
            }
            Some(_) => return Err(EventError::new("user", "must be a string")),
        };
        if MARKED.contains(&ev.as_str()) {
            shape_marked(&mut fields);
        }
        fields.shift_remove("id");
        Ok(Event { ev, time, user, fields })
    }

    /// The event as producers publish it (used by `POST /events`).
    pub fn to_json(&self) -> Value {
        let mut object = Map::with_capacity(self.fields.len() + 2);
        object.insert("ev".into(), Value::String(self.ev.to_string()));
        if let Some(time) = self.time {
            object.insert("time".into(), Value::from(time));
        }
        object.extend(self.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        Value::Object(object)
    }

    /// Serializes the delivery body once. `stream_id` is the event's entry in the event stream;
    /// it stands in for a missing `time` and makes every delivery id unique.
    pub fn prepare(&self, stream_id: StreamId) -> PreparedEvent {
        let time = self.time.unwrap_or(stream_id.ms as i64);
        let mut tail = BytesMut::with_capacity(64 + self.ev.as_str().len());
        let mut writer = (&mut tail).writer();
        // Writing JSON into memory cannot fail; the results are ignored for that reason.
        let _ = write_member(&mut writer, "time", &Value::from(time), false);
        let _ = write_member(&mut writer, "ev", &Value::String(self.ev.to_string()), true);
        for (key, value) in &self.fields {
            let _ = write_member(&mut writer, key, value, true);
        }
        tail.put_u8(b'}');
        PreparedEvent {
            stream_id,
            ev: self.ev.clone(),
            tail: tail.freeze(),
        }
    }
}

/// The event types whose body WildDuck's worker reshapes.
const MARKED: [&str; 2] = ["marked.spam", "marked.ham"];

/// WildDuck's worker on `marked.spam`/`marked.ham`: `data.message = data.id; delete data.id`.
/// `message` keeps its place (or comes last when absent); an absent `id` leaves no `message`
/// (JSON drops `undefined`). The headers it adds from MongoDB are not available here.
fn shape_marked(fields: &mut Map<String, Value>) {
    match fields.shift_remove("id") {
        Some(uid) => {
            match fields.get_mut("message") {
                Some(message) => *message = uid,
                None => {
                    fields.insert("message".into(), uid);
                }
            };
        }
        None => {
            fields.shift_remove("message");
        }
    }
}

fn write_member(out: &mut impl std::io::Write, key: &str, value: &Value, comma: bool) -> std::io::Result<()> {
    if comma {
        out.write_all(b",")?;
    }
    serde_json::to_writer(&mut *out, key)?;
    out.write_all(b":")?;
    serde_json::to_writer(&mut *out, value)?;
    Ok(())
}

/// An event ready to deliver, shared by every webhook it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    /// The event's entry id in the event stream.
    pub stream_id: StreamId,
    pub ev: EventType,
    /// The body after `{"id":"…",`: `"time":…,"ev":…,…}`.
    pub tail: Bytes,
}

impl PreparedEvent {
    /// The full delivery body: `{"id":<delivery id>,"time":…,"ev":…,…}`.
    /// Delivery ids are hex, digits, `-` and `:`, so they need no escaping.
    pub fn body(&self, id: &DeliveryId) -> Bytes {
        let id = id.as_str();
        let mut body = BytesMut::with_capacity(id.len() + self.tail.len() + 10);
        body.put_slice(b"{\"id\":\"");
        body.put_slice(id.as_bytes());
        body.put_slice(b"\",");
        body.put_slice(&self.tail);
        body.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WebhookId;

    fn parse(raw: &str) -> Result<Event, EventError> {
        Event::parse(raw.as_bytes(), 1024)
    }

    #[test]
    fn body_keeps_wildduck_key_order_and_passes_fields_through() {
        let event =
            parse(r#"{"user":"u1","ev":"user.created","username":"ann","nested":{"b":1,"a":[1,2]},"id":"dropped"}"#)
                .unwrap();
        let prepared = event.prepare(StreamId {
            ms: 1700000000123,
            seq: 4,
        });
        let id = DeliveryId::new(
            &WebhookId::parse("0123456789abcdef01234567").unwrap(),
            prepared.stream_id,
        );
        let body = prepared.body(&id);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"id":"0123456789abcdef01234567:1700000000123-4","time":1700000000123,"ev":"user.created","user":"u1","username":"ann","nested":{"b":1,"a":[1,2]}}"#
        );
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["username"], "ann");
    }

    fn body_of(raw: &str) -> Value {
        let prepared = parse(raw).unwrap().prepare(StreamId { ms: 9, seq: 0 });
        let id = DeliveryId::new(
            &WebhookId::parse("0123456789abcdef01234567").unwrap(),
            prepared.stream_id,
        );
        serde_json::from_slice(&prepared.body(&id)).unwrap()
    }

    #[test]
    fn object_id_users_are_lowercased_in_routing_and_body() {
        let event = parse(r#"{"ev":"a","user":"5F1E9D2C8B3A4E00AAAAAAAA"}"#).unwrap();
        assert_eq!(event.user.unwrap().as_str(), "5f1e9d2c8b3a4e00aaaaaaaa");
        assert_eq!(
            body_of(r#"{"ev":"a","user":"5F1E9D2C8B3A4E00AAAAAAAA"}"#)["user"],
            "5f1e9d2c8b3a4e00aaaaaaaa"
        );
        assert_eq!(body_of(r#"{"ev":"a","user":"Ann"}"#)["user"], "Ann");
    }

    #[test]
    fn marked_events_carry_the_uid_in_message_as_wildduck_delivers_them() {
        // What WildDuck publishes (lib/imap-notifier.js) and what its worker delivers.
        let published = r#"{"time":5,"ev":"marked.spam","user":"5f1e9d2c8b3a4e0012345678","mailbox":"6f1e9d2c8b3a4e0012345678","message":"6f1e9d2c8b3a4e0012345679","id":42}"#;
        let prepared = parse(published).unwrap().prepare(StreamId { ms: 9, seq: 0 });
        assert_eq!(
            std::str::from_utf8(&prepared.tail).unwrap(),
            r#""time":5,"ev":"marked.spam","user":"5f1e9d2c8b3a4e0012345678","mailbox":"6f1e9d2c8b3a4e0012345678","message":42}"#
        );
        assert_eq!(body_of(r#"{"ev":"marked.ham","id":7,"user":"u"}"#)["message"], 7);
        let without_uid = body_of(r#"{"ev":"marked.ham","message":"6f1e9d2c8b3a4e0012345679"}"#);
        assert_eq!(without_uid.get("message"), None);
        // Other events keep `message`.
        assert_eq!(body_of(r#"{"ev":"x","message":"m","id":1}"#)["message"], "m");
    }

    #[test]
    fn producer_time_wins_over_stream_time() {
        let event = parse(r#"{"ev":"a","time":5}"#).unwrap();
        let prepared = event.prepare(StreamId { ms: 9, seq: 0 });
        assert_eq!(&prepared.tail[..], br#""time":5,"ev":"a"}"#);
    }

    #[test]
    fn every_rule_names_its_field() {
        let cases = [
            ("nope", "event"),
            ("[1]", "event"),
            ("{}", "ev"),
            (r#"{"ev":5}"#, "ev"),
            (r#"{"ev":""}"#, "ev"),
            (r#"{"ev":"a.*"}"#, "ev"),
            (r#"{"ev":"a","time":"soon"}"#, "time"),
            (r#"{"ev":"a","time":1.5}"#, "time"),
            (r#"{"ev":"a","time":-1}"#, "time"),
            (r#"{"ev":"a","user":7}"#, "user"),
        ];
        for (raw, field) in cases {
            assert_eq!(parse(raw).unwrap_err().field, field, "{raw}");
        }
        assert_eq!(Event::parse(b"\xff\xfe", 10).unwrap_err().rule, "is not valid UTF-8");
        assert!(Event::parse(&[b' '; 11], 10)
            .unwrap_err()
            .rule
            .contains("larger than the limit"));
    }
}

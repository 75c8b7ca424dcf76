//! What the API accepts: request body types (for the OpenAPI document) and the parsers that
//! turn each field into a domain type, naming the rule a bad value broke. The webhook fields
//! `type`, `url` and `user` are read by [`crate::domain`]'s parsers, which the WildDuck import
//! shares.
//!
//! Bodies are read field by field ([`super::input::Fields`]) rather than deserialized in one go,
//! so a 400 can name every bad field at once; the types below document the same fields.

use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::input::string;
use crate::domain::{Ordering, RateLimit, WebhookSecret, MAX_RATE_LIMIT};

/// `POST /webhooks`, as JSON or as a form (`application/x-www-form-urlencoded`), as WildDuck
/// takes it: `type[]=user.*&type[]=marked.spam&url=…` or `type=a&type=b` (a lone `type=a` is
/// not a list, and is refused as there). Keys other than these are refused.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateWebhook {
    /// 1–256 patterns (each ≤ 128 bytes): `*`, `a.*`, `a.b.*` or an exact type, in a list
    /// (a single string is refused, as WildDuck refuses it). Stored trimmed and lowercased, in
    /// the order given, as WildDuck does.
    #[serde(rename = "type")]
    #[schema(min_items = 1, max_items = 256, example = json!(["user.*", "marked.spam"]))]
    types: Vec<String>,
    /// http or https, at most 2048 characters, as given; credentials (`https://user:pass@host/`)
    /// are sent as `Authorization: Basic`; internal addresses are refused.
    #[schema(
        example = "https://example.com/hooks",
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://",
        max_length = 2048
    )]
    url: String,
    /// Only this user's events: a WildDuck user id (24 hex characters, lowercased); absent for
    /// every user's. `me`: the caller's own user, with a WildDuck `user` token.
    #[schema(pattern = "^([0-9a-fA-F]{24}|me)$")]
    user: Option<String>,
    /// `whsec_` + base64 of 24–64 bytes; generated when absent.
    #[schema(pattern = "^whsec_")]
    secret: Option<String>,
    /// At most this many deliveries a second (1–100000); what waits stays queued. Absent: none.
    #[serde(rename = "rateLimit")]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit: Option<u32>,
    /// `parallel` (the default: a failing delivery waits out of the way of the others) or
    /// `strict` (one at a time in stream order; a failing one holds the rest).
    #[schema(pattern = "^(parallel|strict)$")]
    ordering: Option<String>,
    /// Back-fill: replay to the new webhook the retained events routed since this time (ISO
    /// 8601, or ms since the epoch) that it matches, as `POST /webhooks/{id}/replay` does.
    #[schema(value_type = Option<String>, example = "2026-12-01T00:00:00Z")]
    since: Option<Value>,
    /// WildDuck's session id (1–255 characters); checked, not kept.
    #[schema(min_length = 1, max_length = 255)]
    sess: Option<String>,
    /// The end user's IP address (IPv4 or IPv6); checked, not kept.
    ip: Option<String>,
}

/// `PUT /webhooks/{id}`: at least one of these.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UpdateWebhook {
    #[serde(rename = "type")]
    #[schema(min_items = 1, max_items = 256)]
    types: Option<Vec<String>>,
    #[schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?://", max_length = 2048)]
    url: Option<String>,
    /// A WildDuck user id; null makes the webhook global.
    #[schema(pattern = "^[0-9a-fA-F]{24}$")]
    user: Option<String>,
    /// true re-enables a disabled webhook (clearing its reason).
    enabled: Option<bool>,
    /// Deliveries per second (1–100000); null removes the limit.
    #[serde(rename = "rateLimit")]
    #[schema(minimum = 1, maximum = 100000, nullable)]
    rate_limit: Option<u32>,
    /// `parallel` or `strict`.
    #[schema(pattern = "^(parallel|strict)$")]
    ordering: Option<String>,
    #[schema(min_length = 1, max_length = 255)]
    sess: Option<String>,
    ip: Option<String>,
}

/// `POST /webhooks/{id}/dead/replay`: no body (or `{}`) replays every dead letter.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ReplayDeadLetters {
    /// Delivery ids of the dead letters to replay (1–1000).
    #[schema(min_items = 1, max_items = 1000)]
    ids: Option<Vec<String>>,
}

/// `POST /webhooks/{id}/replay`: the range of routing times to replay.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct StartReplay {
    /// From this time (ISO 8601, or ms since the epoch), included.
    #[schema(value_type = String, example = "2026-12-01T00:00:00Z")]
    since: Value,
    /// Up to this time, included; now when absent. Not before `since`.
    #[schema(value_type = Option<String>)]
    until: Option<Value>,
    /// Skip what was delivered with a 2xx (and what is still queued); default false.
    #[serde(rename = "onlyUndelivered")]
    only_undelivered: Option<bool>,
}

/// `GET /events`: a time range and filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventListParams {
    /// Routed at or after this time (ISO 8601, or ms since the epoch).
    since: Option<String>,
    /// Routed at or before this time.
    until: Option<String>,
    /// An event type, or a pattern (`user.*`, `*`), matched as webhooks match.
    #[serde(rename = "type")]
    #[param(max_length = 128)]
    type_pattern: Option<String>,
    /// A user's events only.
    user: Option<String>,
    /// 1–250, default 20.
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    next: Option<String>,
}

/// A time as the API takes it: an RFC 3339 / ISO 8601 string, or ms since the epoch (a
/// number, or a string of digits, as a form or query string sends it).
pub fn parse_time(value: Value) -> Result<u64, String> {
    let rule = || "must be a time: ISO 8601 (2026-12-01T00:00:00Z) or ms since the epoch".to_string();
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(rule),
        Value::String(text) => parse_time_text(&text).ok_or_else(rule),
        _ => Err(rule()),
    }
}

fn parse_time_text(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    crate::clock::parse_iso8601(text)
}

/// [`parse_time`] for a query parameter.
pub fn parse_time_query(text: &str) -> Result<u64, String> {
    parse_time(Value::String(text.to_string()))
}

/// An event: `ev` and anything else, passed through.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct EventBody {
    /// The type: 1–128 bytes, no `*`.
    #[schema(example = "user.created", min_length = 1, max_length = 128)]
    ev: String,
    /// ms since the epoch; the stream entry's time when absent.
    #[schema(minimum = 0)]
    time: Option<i64>,
    /// The user the event belongs to.
    user: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    other: serde_json::Map<String, Value>,
}

/// `POST /events`: one event, or an array of 1–1000.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PublishEvents {
    One(EventBody),
    Many(Vec<EventBody>),
}

/// `GET /webhooks` filters and paging, as WildDuck reads them. Other parameters are ignored.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Webhooks whose type list contains exactly this string (lowercased, as patterns are;
    /// at most 128 characters; empty: no filter). Echoed in the answer.
    #[serde(rename = "type")]
    types: Option<String>,
    /// Webhooks that would receive an event of this type (lowercased, as patterns are; with
    /// `user`: that user's events; empty: no filter). hookrouter's own.
    event: Option<String>,
    /// Webhooks of this WildDuck user (24 hex characters; `me` with a WildDuck `user` token).
    #[param(pattern = "^([0-9a-fA-F]{24}|me)$")]
    user: Option<String>,
    /// 1–250, default 20.
    #[param(minimum = 1, maximum = 250)]
    limit: Option<f64>,
    /// `nextCursor` of the previous page (empty: none). Wins over `previous`.
    next: Option<String>,
    /// `previousCursor` of the previous page (empty: none); followed unless `page` is 1 (or
    /// between 0 and 1, or negative): then the first page is listed, as in WildDuck 1.45.
    previous: Option<String>,
    /// The number of the page asked for, echoed back when there is an earlier page.
    page: Option<f64>,
    /// WildDuck's session id (1–255 characters); checked, not kept.
    #[param(min_length = 1, max_length = 255)]
    sess: Option<String>,
    /// The end user's IP address; checked, not kept.
    ip: Option<String>,
}

/// Paging of history lists (attempts, dead letters, rejected entries).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// 1–250, default 20.
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    next: Option<String>,
}

pub fn parse_enabled(value: Value) -> Result<bool, String> {
    value.as_bool().ok_or_else(|| "must be true or false".into())
}

pub fn parse_secret(value: Value) -> Result<WebhookSecret, String> {
    WebhookSecret::parse(&string(value)?)
}

/// `rateLimit`: deliveries per second (a number, or its digits in a form body); null removes
/// the limit.
pub fn parse_rate_limit(value: Value) -> Result<Option<RateLimit>, String> {
    let rule = || format!("must be a whole number of deliveries per second from 1 to {MAX_RATE_LIMIT}, or null");
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().ok_or_else(rule).and_then(RateLimit::parse).map(Some),
        Value::String(text) => text
            .trim()
            .parse()
            .map_err(|_| rule())
            .and_then(RateLimit::parse)
            .map(Some),
        _ => Err(rule()),
    }
}

/// `ordering`: `"parallel"` (the default) or `"strict"`.
pub fn parse_ordering(value: Value) -> Result<Ordering, String> {
    Ordering::parse(&string(value)?)
}

//! The bodies the API answers with, as types: handlers serialize these, and the OpenAPI
//! document is generated from the same types, so the two cannot disagree.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::webhooks::WebhookView;
use crate::actors::delivery::HealthReport;
use crate::domain::js_number::JsNumber;

/// `{"success": true}`.
#[derive(Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub fn yes() -> Success {
        Success { success: true }
    }
}

/// A list cursor, or `false` when there is no such page (WildDuck's shape).
pub struct Cursor(pub Option<String>);

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(cursor) => serializer.serialize_str(cursor),
            None => serializer.serialize_bool(false),
        }
    }
}

impl PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("an opaque cursor")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("false: no such page")),
            )
            .into()
    }
}

impl ToSchema for Cursor {}

/// Every error: a message, a stable code, and for input errors the broken fields.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// `InputValidationError`, `WebhookNotFound`, `InvalidToken`, `MissingPrivileges`,
    /// `InvalidTicket`, `RouteNotFound`, `MethodNotAllowed`, `PayloadTooLarge`, `InternalError`,
    /// `ServiceUnavailable`.
    pub code: String,
    /// Field (or `body`, or query parameter) → the rule it broke.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
    /// `InvalidToken` only: the same words as `error`, where WildDuck's API puts them for a
    /// refused token (`{"code": "InvalidToken", "message": "Invalid accessToken value"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A page of webhooks, in WildDuck's shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookList {
    pub success: bool,
    /// The `type` filter (lowercased), when one was given: WildDuck echoes it.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_filter: Option<String>,
    /// Whose webhooks these are: the `user` filter, the caller's own user for a WildDuck
    /// `user`-role token, or null.
    pub user: Option<String>,
    /// Webhooks matching the filters.
    pub total: u64,
    /// The `page` given (any number; the cursor's page when none was), or 1 on the first page.
    #[schema(value_type = f64)]
    pub page: JsNumber,
    pub previous_cursor: Cursor,
    pub next_cursor: Cursor,
    pub results: Vec<WebhookView>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub success: bool,
    pub id: String,
    /// The signing secret (`whsec_…`); also at `GET /webhooks/{id}/secret`.
    pub secret: String,
    /// With `since`: the back-fill replay's number (`GET /webhooks/{id}/replays/{n}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    pub success: bool,
    #[serde(flatten)]
    pub webhook: WebhookView,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretResponse {
    pub success: bool,
    pub secret: String,
    /// Until when the previous secret also signs deliveries (after a rotation).
    pub previous_secret_expires: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookHealthResponse {
    pub success: bool,
    #[serde(flatten)]
    pub report: HealthReport,
}

#[derive(Serialize, ToSchema)]
pub struct ServiceHealth {
    pub success: bool,
    /// `up`, `loading` (Redis restarted and is reading its data back), `refusingWrites` (it
    /// answers but refuses writes: out of memory, unable to save, too few replicas; `redisError`
    /// says which) or `down`.
    pub redis: String,
    /// Why Redis cannot be used, when it cannot: a refused login or certificate in words, or
    /// the error. Shown only to callers with a valid token when tokens are configured.
    #[serde(rename = "redisError", skip_serializing_if = "Option::is_none")]
    pub redis_error: Option<String>,
    /// The Redis server in use, `host:port`: `[redis] url`'s, or the primary the sentinels
    /// named last. Shown only to callers with a valid token when tokens are configured.
    #[serde(rename = "redisAddress", skip_serializing_if = "Option::is_none")]
    pub redis_address: Option<String>,
    /// What that server says it is (`ROLE`): `master`, or `slave` while a failover is under
    /// way (null when it does not answer). Shown only to callers with a valid token.
    #[serde(rename = "redisRole", skip_serializing_if = "Option::is_none")]
    pub redis_role: Option<Option<String>>,
    /// This instance's name (`[instance] name`). Shown only to callers with a valid token when
    /// tokens are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// `starting`, `running`, `reconnecting`, `stopped`, or `disabled` (API-only instance).
    /// Shown only to callers with a valid token when tokens are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
    /// Events in the stream not yet routed (null when Redis is down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<Option<u64>>,
    /// Delivery actors running: one per webhook with work (null on an API-only instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<Option<usize>>,
    /// Webhooks this instance delivers (null on an API-only instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Option<usize>>,
    /// The BullMQ source, when this instance runs one: `starting`, `running`, `paused` (the
    /// BullMQ queue is paused), `reconnecting` or `stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bullmq: Option<String>,
}

/// One live instance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub name: String,
    /// Delivers webhooks (false: an API-only instance).
    pub delivering: bool,
    /// Webhooks it owns (0 for an API-only instance).
    pub webhooks: u64,
    pub started_at: String,
    /// Its last heartbeat (every `[leases] ttl_ms` / 4).
    pub last_seen: String,
}

#[derive(Serialize, ToSchema)]
pub struct InstanceList {
    pub success: bool,
    pub results: Vec<InstanceView>,
}

/// `POST /events` with one event.
#[derive(Serialize, ToSchema)]
pub struct Published {
    pub success: bool,
    /// The event's stream entry id.
    pub id: String,
}

/// `POST /events` with an array.
#[derive(Serialize, ToSchema)]
pub struct PublishedBatch {
    pub success: bool,
    pub ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PublishResponse {
    One(Published),
    Many(PublishedBatch),
}

/// A page of history, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResponse<T: ToSchema> {
    pub success: bool,
    /// Pass back as `next` for older entries.
    pub next_cursor: Cursor,
    pub results: Vec<T>,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    pub success: bool,
    /// Dead letters put back on the queue.
    pub replayed: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Purged {
    pub success: bool,
    /// Dead letters deleted.
    pub deleted: u64,
}

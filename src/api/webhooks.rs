//! `/webhooks`: list, create, read, update and delete webhooks, in WildDuck's JSON shapes.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::input::{string, Fields, Query};
use super::{cursor, ApiState};
use crate::clock::{iso8601, now_ms};
use crate::domain::{EventType, TypePattern, UserId, Webhook, WebhookId, WebhookSecret, WebhookUrl};
use crate::store::{ListDirection, ListQuery, WebhookChange};

pub const MAX_TYPES: usize = 32;
pub const MAX_LIMIT: u64 = 250;
pub const DEFAULT_LIMIT: u64 = 20;
/// WildDuck clients send these with every call; they mean nothing here.
const IGNORED_KEYS: &[&str] = &["sess", "ip"];

/// A webhook as the API shows it.
#[derive(Serialize)]
pub struct WebhookView {
    id: String,
    #[serde(rename = "type")]
    types: Vec<String>,
    user: Option<String>,
    url: String,
    created: String,
    enabled: bool,
    #[serde(rename = "disabledReason", skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    /// Present (true) only while paused, so WildDuck-shaped results stay as they were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
}

impl From<&Webhook> for WebhookView {
    fn from(webhook: &Webhook) -> WebhookView {
        WebhookView {
            id: webhook.id.to_string(),
            types: webhook.types.iter().map(ToString::to_string).collect(),
            user: webhook.user.as_ref().map(ToString::to_string),
            url: webhook.url.to_string(),
            created: iso8601(webhook.created_ms),
            enabled: webhook.enabled,
            disabled_reason: webhook.disabled_reason.clone(),
            paused: webhook.paused,
        }
    }
}

/// Path ids that are not well-formed are simply unknown webhooks.
pub fn parse_id(id: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(id).ok_or(ApiError::WebhookNotFound)
}

fn parse_types(value: Value) -> Result<Vec<TypePattern>, String> {
    let items = match value {
        Value::Array(items) => items,
        Value::String(one) => vec![Value::String(one)],
        _ => return Err("must be a list of event type patterns".into()),
    };
    if items.is_empty() || items.len() > MAX_TYPES {
        return Err(format!("must list 1 to {MAX_TYPES} event type patterns"));
    }
    let mut patterns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(format!("item {i} must be a string"));
        };
        let pattern = TypePattern::parse(text.trim()).map_err(|rule| format!("item {i} ({text:?}) {rule}"))?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

fn parse_url(value: Value) -> Result<WebhookUrl, String> {
    WebhookUrl::parse(string(value)?.trim())
}

/// A user id, or null for a global webhook.
fn parse_user(value: Value) -> Result<Option<UserId>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(user) => UserId::parse(&user).map(Some),
        _ => Err("must be a string or null".into()),
    }
}

fn parse_enabled(value: Value) -> Result<bool, String> {
    value.as_bool().ok_or_else(|| "must be true or false".into())
}

pub async fn list(
    state: web::Data<ApiState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut query = Query::new(query.into_inner());
    let limit = query.integer("limit", 1..=MAX_LIMIT, DEFAULT_LIMIT);
    let page = query.integer("page", 1..=u32::MAX as u64, 1);
    let user = query.parse("user", UserId::parse);
    let event = query.parse("event", EventType::parse);
    let type_pattern = query.parse("type", |t| match t.len() {
        1..=128 => Ok(t.to_string()),
        _ => Err("must be 1 to 128 bytes".to_string()),
    });
    let invalid_cursor = || "must be a cursor from a previous response".to_string();
    let next = query.parse("next", |c| cursor::decode(c).ok_or_else(invalid_cursor));
    let previous = query.parse("previous", |c| cursor::decode(c).ok_or_else(invalid_cursor));
    if next.is_some() && previous.is_some() {
        query
            .errors
            .insert("previous".into(), "cannot be combined with next".into());
    }
    query.finish()?;
    let list_query = ListQuery {
        user,
        type_pattern,
        event,
        limit: limit as usize,
        cursor: next.or(previous),
    };
    let page_of = state.store.webhooks().list(&list_query).await?;
    let first = page_of.results.first().map(|w| w.id);
    let last = page_of.results.last().map(|w| w.id);
    let cursor_or_false = |present: bool, direction, id: Option<WebhookId>| match (present, id) {
        (true, Some(id)) => json!(cursor::encode(direction, &id)),
        _ => json!(false),
    };
    let results: Vec<WebhookView> = page_of.results.iter().map(WebhookView::from).collect();
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "total": page_of.total,
        "page": page,
        "previousCursor": cursor_or_false(page_of.has_previous, ListDirection::Previous, first),
        "nextCursor": cursor_or_false(page_of.has_next, ListDirection::Next, last),
        "results": results,
    })))
}

pub async fn create(state: web::Data<ApiState>, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    let mut fields = Fields::object(body.into_inner(), &["type", "url", "user", "secret"], IGNORED_KEYS)?;
    let types = fields.require("type", parse_types);
    let url = fields.require("url", parse_url);
    let user = fields.parse("user", parse_user).flatten();
    let secret = fields.parse("secret", parse_secret);
    if let Some(url) = &url {
        guard_destination(&state, url, &mut fields).await;
    }
    let (Some(types), Some(url)) = (types, url) else {
        return Err(ApiError::InputValidation(fields.errors));
    };
    fields.finish()?;
    let webhook = Webhook {
        id: WebhookId::generate(),
        url,
        types,
        user,
        created_ms: now_ms(),
        enabled: true,
        disabled_reason: None,
        paused: false,
        secret: secret.unwrap_or_else(WebhookSecret::generate),
        previous_secret: None,
    };
    let version = state.store.webhooks().create(&webhook).await?;
    state.changed(webhook.id, Some(version)).await;
    tracing::info!(webhook = %webhook.id, url = %webhook.url, "webhook created");
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "id": webhook.id.to_string(),
        "secret": webhook.secret.expose(),
    })))
}

fn parse_secret(value: Value) -> Result<WebhookSecret, String> {
    WebhookSecret::parse(&string(value)?)
}

/// The SSRF guard's create/update check; a refusal is a 400 on `url`.
async fn guard_destination(state: &ApiState, url: &WebhookUrl, fields: &mut Fields) {
    if let Err(reason) = state.destinations.check_url(url).await {
        fields.errors.insert("url".into(), format!("is refused: {reason}"));
    }
}

pub async fn get(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let webhook = state
        .store
        .webhooks()
        .get(&id)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    let mut body = serde_json::to_value(WebhookView::from(&webhook)).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["success"] = json!(true);
    Ok(HttpResponse::Ok().json(body))
}

pub async fn update(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let mut fields = Fields::object(body.into_inner(), &["type", "url", "user", "enabled"], IGNORED_KEYS)?;
    if fields.is_empty() && fields.errors.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "must change at least one of type, url, user, enabled",
        ));
    }
    let change = WebhookChange {
        types: fields.parse("type", parse_types),
        url: fields.parse("url", parse_url),
        user: fields.parse("user", parse_user),
        enabled: fields.parse("enabled", parse_enabled),
        disabled_reason: Some("disabled through the API".into()),
        ..WebhookChange::default()
    };
    if let Some(url) = &change.url {
        guard_destination(&state, url, &mut fields).await;
    }
    fields.finish()?;
    let (_, version) = state
        .store
        .webhooks()
        .update(&id, &change)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    state.changed(id, Some(version)).await;
    Ok(HttpResponse::Ok().json(json!({ "success": true })))
}

pub async fn delete(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let version = state
        .store
        .webhooks()
        .delete(&id)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    state.changed(id, Some(version)).await;
    tracing::info!(webhook = %id, "webhook deleted");
    Ok(HttpResponse::Ok().json(json!({ "success": true })))
}

/// `POST /webhooks/{id}/pause`: keep queueing its events, deliver nothing.
pub async fn pause(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &id, true).await
}

/// `POST /webhooks/{id}/resume`: deliver again, starting with what queued meanwhile.
pub async fn resume(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &id, false).await
}

async fn set_paused(state: &ApiState, id: &str, paused: bool) -> Result<HttpResponse, ApiError> {
    let id = parse_id(id)?;
    let change = WebhookChange {
        paused: Some(paused),
        ..WebhookChange::default()
    };
    let (_, version) = state
        .store
        .webhooks()
        .update(&id, &change)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    state.changed(id, Some(version)).await;
    Ok(HttpResponse::Ok().json(json!({ "success": true })))
}

/// `GET /webhooks/{id}/secret`: the secret receivers verify signatures with.
pub async fn secret(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let webhook = state
        .store
        .webhooks()
        .get(&id)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    Ok(HttpResponse::Ok().json(secret_body(&webhook)))
}

/// `POST /webhooks/{id}/secret/rotate`: a new secret; the old one keeps signing deliveries
/// (beside the new one) for `[security] rotation_grace_ms`.
pub async fn rotate_secret(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let grace_ends = now_ms() + state.settings.security.rotation_grace_ms;
    let change = WebhookChange {
        rotate_secret: Some((WebhookSecret::generate(), grace_ends)),
        ..WebhookChange::default()
    };
    let (webhook, version) = state
        .store
        .webhooks()
        .update(&id, &change)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    state.changed(id, Some(version)).await;
    tracing::info!(webhook = %id, "webhook secret rotated");
    Ok(HttpResponse::Ok().json(secret_body(&webhook)))
}

fn secret_body(webhook: &Webhook) -> Value {
    let previous_expires = webhook
        .previous_secret
        .as_ref()
        .filter(|p| p.expires_ms > now_ms())
        .map(|p| iso8601(p.expires_ms));
    json!({
        "success": true,
        "secret": webhook.secret.expose(),
        "previousSecretExpires": previous_expires,
    })
}

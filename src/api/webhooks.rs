//! `/webhooks`: list, create, read, update and delete webhooks, in WildDuck's JSON shapes.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::errors::{ApiError, BodyErrors, CommonErrors, NotFound};
use super::input::{Fields, Query};
use super::requests::{parse_enabled, parse_secret, CreateWebhook, ListParams, UpdateWebhook, IGNORED_KEYS};
use super::responses::{CreatedWebhook, Cursor, Success, WebhookList, WebhookResponse};
use super::{cursor, ApiState};
use crate::clock::{iso8601, now_ms};
use crate::domain::{
    normalize_type, parse_types, parse_url, parse_user, EventType, UserId, Webhook, WebhookId, WebhookSecret,
    WebhookUrl,
};
use crate::store::{ListDirection, ListQuery, WebhookChange};

pub const MAX_LIMIT: u64 = 250;
pub const DEFAULT_LIMIT: u64 = 20;

/// A webhook as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    /// 24 lowercase hex characters.
    id: String,
    #[serde(rename = "type")]
    types: Vec<String>,
    /// null for a global webhook.
    user: Option<String>,
    /// The destination. Lists show query values and secret-looking path segments as `***`;
    /// `GET /webhooks/{id}` shows it whole.
    url: String,
    /// ISO 8601.
    created: String,
    enabled: bool,
    /// Why it was disabled; only on disabled webhooks.
    #[serde(rename = "disabledReason", skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    /// Present (true) only while paused, so WildDuck-shaped results stay as they were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
}

impl WebhookView {
    /// The webhook with its whole URL: only `GET /webhooks/{id}` shows it.
    fn whole(webhook: &Webhook) -> WebhookView {
        WebhookView {
            url: webhook.url.to_string(),
            ..WebhookView::listed(webhook)
        }
    }

    /// The webhook as lists show it: query values and secret-looking path segments of its URL
    /// are `***` (see [`crate::domain::WebhookUrl::redacted`]).
    pub fn listed(webhook: &Webhook) -> WebhookView {
        WebhookView {
            id: webhook.id.to_string(),
            types: webhook.types.iter().map(ToString::to_string).collect(),
            user: webhook.user.as_ref().map(ToString::to_string),
            url: webhook.url.redacted(),
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

/// The SSRF guard's create/update check; a refusal is a 400 on `url`.
async fn guard_destination(state: &ApiState, url: &WebhookUrl, fields: &mut Fields) {
    if let Err(reason) = state.destinations.check_url(url).await {
        fields.errors.insert("url".into(), format!("is refused: {reason}"));
    }
}

/// List webhooks, oldest first.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(ListParams),
    responses((status = 200, body = WebhookList), BodyErrors, CommonErrors))]
pub async fn list(
    state: web::Data<ApiState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut query = Query::new(query.into_inner());
    let limit = query.integer("limit", 1..=MAX_LIMIT, DEFAULT_LIMIT);
    let page = query.integer("page", 1..=u32::MAX as u64, 1);
    let user = query.parse("user", UserId::parse);
    // Both filters are lowercased, as the patterns they are compared with were.
    let event = query.parse("event", |e| EventType::parse(&normalize_type(e)));
    let type_pattern = query.parse("type", |t| match normalize_type(t) {
        t if (1..=128).contains(&t.len()) => Ok(t),
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
    let found = state.store.webhooks().list(&list_query).await?;
    let first = found.results.first().map(|w| w.id);
    let last = found.results.last().map(|w| w.id);
    let cursor_at = |present: bool, direction, id: Option<WebhookId>| {
        Cursor(id.filter(|_| present).map(|id| cursor::encode(direction, &id)))
    };
    Ok(HttpResponse::Ok().json(WebhookList {
        success: true,
        total: found.total,
        page,
        previous_cursor: cursor_at(found.has_previous, ListDirection::Previous, first),
        next_cursor: cursor_at(found.has_next, ListDirection::Next, last),
        results: found.results.iter().map(WebhookView::listed).collect(),
    }))
}

/// Create a webhook. The response holds its signing secret.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 200, body = CreatedWebhook), BodyErrors, CommonErrors))]
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
    tracing::info!(webhook = %webhook.id, url = %webhook.url.redacted(), "webhook created");
    Ok(HttpResponse::Ok().json(CreatedWebhook {
        success: true,
        id: webhook.id.to_string(),
        secret: webhook.secret.expose(),
    }))
}

/// One webhook.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookResponse), NotFound, CommonErrors))]
pub async fn get(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let webhook = state.webhook(&id).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse {
        success: true,
        webhook: WebhookView::whole(&webhook),
    }))
}

/// Change any of `type`, `url`, `user`, `enabled`.
#[utoipa::path(put, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateWebhook, responses((status = 200, body = Success), NotFound, BodyErrors, CommonErrors))]
pub async fn update(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id is a 404 before any body error.
    parse_id(&id)?;
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
    state.change(&id, &change).await?;
    Ok(HttpResponse::Ok().json(Success::yes()))
}

/// Delete a webhook: its actor stops, its queue, dead letters and attempt log are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Success), NotFound, CommonErrors))]
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
    Ok(HttpResponse::Ok().json(Success::yes()))
}

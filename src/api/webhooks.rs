//! `/webhooks`: create, read, update and delete webhooks, in WildDuck's JSON shapes (the list is
//! in [`super::webhook_list`]).
//!
//! `POST /webhooks` and `DELETE /webhooks/{id}` answer as WildDuck's routes answer
//! (`lib/api/webhooks.js`): parameters from a JSON or form body and the query string, merged;
//! `sess` and `ip` checked; every input error first (400 `InputValidationError`), then the
//! caller's rights (403 `MissingPrivileges`), then a missing webhook (404 `WebhookNotFound`,
//! "Invalid or unknown webhook identifier"). What hookrouter adds or refuses beyond that (the
//! SSRF guard, `http`/`https` only, whole-segment wildcards, 1–256 patterns) is listed in
//! docs/wildduck.md.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::errors::{ApiError, BodyErrors, CommonErrors, NotFound};
use super::input::{Fields, Query};
use super::params;
use super::requests::{
    parse_enabled, parse_ordering, parse_rate_limit, parse_secret, parse_time, CreateWebhook, UpdateWebhook,
};
use super::responses::{CreatedWebhook, Success, WebhookResponse};
use super::ApiState;
use crate::clock::{iso8601, now_ms};
use crate::domain::{
    parse_types, parse_url, parse_user, parse_user_or_null, DeliveryOptions, Ordering, RateLimit, UserId, Webhook,
    WebhookId, WebhookSecret, WebhookUrl,
};
use crate::store::WebhookChange;

/// A webhook as the API shows it: its URL as stored (a secret in it too), as WildDuck shows it
/// to callers allowed to read the webhook. Logs and the dashboard show it redacted.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    /// 24 lowercase hex characters.
    id: String,
    #[serde(rename = "type")]
    types: Vec<String>,
    /// null for a global webhook.
    user: Option<String>,
    /// The destination, as stored.
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
    /// Deliveries per second at most; only on webhooks that have a limit.
    #[serde(rename = "rateLimit", skip_serializing_if = "Option::is_none")]
    rate_limit: Option<u32>,
    /// `strict`; only on webhooks delivered in strict order (the default is `parallel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    ordering: Option<&'static str>,
}

impl WebhookView {
    pub fn of(webhook: &Webhook) -> WebhookView {
        WebhookView {
            id: webhook.id.to_string(),
            types: webhook.types.iter().map(ToString::to_string).collect(),
            user: webhook.user.as_ref().map(ToString::to_string),
            url: webhook.url.to_string(),
            created: iso8601(webhook.created_ms),
            enabled: webhook.enabled,
            disabled_reason: webhook.disabled_reason.clone(),
            paused: webhook.paused,
            rate_limit: webhook.delivery.rate_limit.map(RateLimit::per_second),
            ordering: (webhook.delivery.ordering != Ordering::Parallel).then(|| webhook.delivery.ordering.as_str()),
        }
    }
}

/// A webhook id in a path, or the rule it broke.
fn id_rule(id: &str) -> Result<WebhookId, String> {
    WebhookId::parse(id).ok_or_else(|| "must be 24 hexadecimal characters".to_string())
}

/// A webhook id in a path: a malformed one is a 400, as in WildDuck.
pub fn parse_id(id: &str) -> Result<WebhookId, ApiError> {
    id_rule(id).map_err(|rule| ApiError::invalid("id", rule))
}

/// The SSRF guard's create/update check; a refusal is a 400 on `url`.
async fn guard_destination(state: &ApiState, url: &WebhookUrl, fields: &mut Fields) {
    if let Err(reason) = state.destinations.check_url(url).await {
        fields.errors.insert("url".into(), format!("is refused: {reason}"));
    }
}

/// Create a webhook. The response holds its signing secret.
///
/// The body is JSON or a form (`type[]=a&type[]=b&url=…`); query parameters count too.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks",
    request_body(content(
        (CreateWebhook = "application/json"),
        (CreateWebhook = "application/x-www-form-urlencoded"),
    )),
    responses((status = 200, body = CreatedWebhook), BodyErrors, CommonErrors))]
pub async fn create(
    state: web::Data<ApiState>,
    caller: Caller,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut input = params::merged(&request, &body)?;
    params::me(&mut input, caller.object_id_user());
    let mut fields = Fields::new(
        input,
        &["type", "url", "user", "secret", "rateLimit", "ordering", "since"],
    );
    let types = fields.require("type", parse_types);
    let url = fields.require("url", parse_url);
    let user = fields.parse("user", parse_user);
    let secret = fields.parse("secret", parse_secret);
    let delivery = DeliveryOptions {
        rate_limit: fields.parse("rateLimit", parse_rate_limit).flatten(),
        ordering: fields.parse("ordering", parse_ordering).unwrap_or_default(),
    };
    let since = fields.parse("since", parse_time);
    let (Some(types), Some(url), true) = (types, url, fields.errors.is_empty()) else {
        return Err(ApiError::InputValidation(fields.errors));
    };
    // WildDuck asks for `createOwn` when the webhook is the caller's and `createAny` otherwise;
    // no role in its roles.json has `createOwn` for webhooks.
    if !caller.grants.create_any {
        return Err(ApiError::MissingPrivileges);
    }
    guard_destination(&state, &url, &mut fields).await;
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
        delivery,
    };
    let mark = state.store.before_write();
    let version = state.store.webhooks().create(&webhook).await?;
    state.changed(webhook.id, Some(version), mark).await?;
    tracing::info!(webhook = %webhook.id, url = %webhook.url.redacted(), "webhook created");
    // Back-fill, up to now: events routed from here on were routed with the new webhook (the
    // fan-out refuses an index older than the write). One routed in between by another
    // instance may reach it twice, with the same delivery id; none is missed.
    let replay = match since {
        Some(since) => super::replays::start(&state, &webhook.id, (since, now_ms()), false)
            .await?
            .map(|replay| replay.id),
        None => None,
    };
    Ok(HttpResponse::Ok().json(CreatedWebhook {
        success: true,
        id: webhook.id.to_string(),
        secret: webhook.secret.expose(),
        replay,
    }))
}

/// One webhook.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookResponse), NotFound, CommonErrors))]
pub async fn get(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let webhook = state.webhook(&id).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse {
        success: true,
        webhook: WebhookView::of(&webhook),
    }))
}

/// Change any of `type`, `url`, `user`, `enabled`, `rateLimit`, `ordering`.
#[utoipa::path(put, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateWebhook, responses((status = 200, body = Success), NotFound, BodyErrors, CommonErrors))]
pub async fn update(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id is refused before any body error.
    parse_id(&id)?;
    let changeable = ["type", "url", "user", "enabled", "rateLimit", "ordering"];
    let mut fields = Fields::object(body.into_inner(), &changeable)?;
    if fields.is_empty() && fields.errors.is_empty() {
        return Err(ApiError::invalid(
            "body",
            format!("must change at least one of {}", changeable.join(", ")),
        ));
    }
    let change = WebhookChange {
        types: fields.parse("type", parse_types),
        url: fields.parse("url", parse_url),
        user: fields.parse("user", parse_user_or_null),
        enabled: fields.parse("enabled", parse_enabled),
        rate_limit: fields.parse("rateLimit", parse_rate_limit),
        ordering: fields.parse("ordering", parse_ordering),
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
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path), ("sess" = Option<String>, Query), ("ip" = Option<String>, Query)),
    responses((status = 200, body = Success), NotFound, CommonErrors))]
pub async fn delete(
    state: web::Data<ApiState>,
    caller: Caller,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // WildDuck validates the path and query parameters together, and allows no others.
    let mut query = Query::from_params(params::without_token(params::parse(request.query_string())));
    query.only(&[]);
    query.session();
    let id = id_rule(&id).map_err(|rule| query.errors.insert("id".into(), rule)).ok();
    let errors = std::mem::take(&mut query.errors);
    let (Some(id), true) = (id, errors.is_empty()) else {
        return Err(ApiError::InputValidation(errors));
    };
    let webhook = state.store.webhooks().get(&id).await?;
    let owner = webhook.as_ref().and_then(|w| w.user.as_ref()).map(UserId::as_str);
    let allowed = if caller.owns(owner) {
        caller.grants.delete_own
    } else {
        caller.grants.delete_any
    };
    if !allowed {
        return Err(ApiError::MissingPrivileges);
    }
    if webhook.is_none() {
        return Err(ApiError::WebhookNotFound);
    }
    let mark = state.store.before_write();
    let deleted = state.store.webhooks().delete(&id).await?;
    if let Some(version) = deleted {
        state.changed(id, Some(version), mark).await?;
        tracing::info!(webhook = %id, "webhook deleted");
    }
    // Deleted by someone else meanwhile: WildDuck answers `success: false` then.
    Ok(HttpResponse::Ok().json(Success {
        success: deleted.is_some(),
    }))
}

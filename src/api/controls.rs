//! Operating one webhook: pause and resume its deliveries, retry now, read and rotate its
//! signing secret.

use actix_web::{web, HttpResponse};

use super::errors::{ApiError, CommonErrors, NotFound};
use super::responses::{SecretResponse, Success};
use super::ApiState;
use crate::actors::supervisor::RetryWebhook;
use crate::clock::{iso8601, now_ms};
use crate::domain::{Webhook, WebhookSecret};
use crate::store::{Notice, WebhookChange};

/// Keep queueing the webhook's events but deliver nothing (health state `paused`).
#[utoipa::path(post, path = "/webhooks/{id}/pause", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Success), NotFound, CommonErrors))]
pub async fn pause(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &id, true).await
}

/// Deliver again, starting with what queued meanwhile.
#[utoipa::path(post, path = "/webhooks/{id}/resume", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Success), NotFound, CommonErrors))]
pub async fn resume(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    set_paused(&state, &id, false).await
}

/// The receiver is fixed: probe the endpoint now (an open circuit closes on success) and make
/// every delivery waiting for its retry due now. Answers at once; deliveries follow.
#[utoipa::path(post, path = "/webhooks/{id}/retry", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Success), NotFound, CommonErrors))]
pub async fn retry(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = state.webhook(&id).await?.id;
    state.store.queue().retry_now(&id).await?;
    // Whichever instance delivers it hears of it; this one is told directly.
    state.store.webhooks().announce(&Notice::RetryNow(id)).await?;
    if let Some(router) = &state.router {
        if let Err(error) = router.supervisor.send(RetryWebhook(id)).await {
            tracing::warn!(webhook = %id, %error, "could not tell the supervisor to retry");
        }
    }
    tracing::info!(webhook = %id, "retry requested");
    Ok(HttpResponse::Ok().json(Success::yes()))
}

async fn set_paused(state: &ApiState, id: &str, paused: bool) -> Result<HttpResponse, ApiError> {
    let change = WebhookChange {
        paused: Some(paused),
        ..WebhookChange::default()
    };
    state.change(id, &change).await?;
    Ok(HttpResponse::Ok().json(Success::yes()))
}

/// The secret receivers verify signatures with.
#[utoipa::path(get, path = "/webhooks/{id}/secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = SecretResponse), NotFound, CommonErrors))]
pub async fn secret(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let webhook = state.webhook(&id).await?;
    Ok(HttpResponse::Ok().json(secret_body(&webhook)))
}

/// A new secret; the old one keeps signing deliveries beside it for
/// `[security] rotation_grace_ms`.
#[utoipa::path(post, path = "/webhooks/{id}/secret/rotate", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = SecretResponse), NotFound, CommonErrors))]
pub async fn rotate_secret(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let grace_ends = now_ms() + state.settings.security.rotation_grace_ms;
    let change = WebhookChange {
        rotate_secret: Some((WebhookSecret::generate(), grace_ends)),
        ..WebhookChange::default()
    };
    let webhook = state.change(&id, &change).await?;
    tracing::info!(webhook = %webhook.id, "webhook secret rotated");
    Ok(HttpResponse::Ok().json(secret_body(&webhook)))
}

fn secret_body(webhook: &Webhook) -> SecretResponse {
    SecretResponse {
        success: true,
        secret: webhook.secret.expose(),
        previous_secret_expires: webhook
            .previous_secret
            .as_ref()
            .filter(|p| p.expires_ms > now_ms())
            .map(|p| iso8601(p.expires_ms)),
    }
}

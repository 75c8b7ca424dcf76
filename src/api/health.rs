//! `GET /health` (the service) and `GET /webhooks/{id}/health` (one delivery actor).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::auth::Authenticated;
use super::errors::{ApiError, CommonErrors, NotFound, RETRY_AFTER_S};
use super::responses::{ServiceHealth, WebhookHealthResponse};
use super::ApiState;
use crate::actors::delivery::{GetHealth, HealthReport, HealthState};
use crate::actors::ownership::owner_among;
use crate::clock::{iso8601, now_ms};
use crate::domain::{InstanceName, Webhook};
use crate::store::{refusal, Unavailable};

/// 200 when Redis answers and takes writes; 503 with `Retry-After` when it does not, is
/// loading its data, or refuses writes (out of memory, unable to save, too few replicas):
/// `redis` says `down`, `loading` or `refusingWrites`, `redisError` why; always JSON. Without a valid access token (when tokens
/// are configured) only `success` and `redis` are shown.
#[utoipa::path(get, path = "/health", tag = "health", responses(
    (status = 200, body = ServiceHealth, description = "Redis answers"),
    (status = 503, body = ServiceHealth, description = "Redis is unreachable, loading its data, or refusing writes",
        headers(("Retry-After" = u64, description = "Seconds to wait before asking again")))))]
pub async fn service(state: web::Data<ApiState>, request: HttpRequest) -> HttpResponse {
    let checked = match state.store.check().await {
        Ok(()) => state.store.check_writes().await,
        down => down,
    };
    let (status, redis) = match checked.as_ref().map_err(|error| error.unavailable()) {
        Ok(()) => (StatusCode::OK, "up"),
        Err(Some(Unavailable::Loading)) => (StatusCode::SERVICE_UNAVAILABLE, "loading"),
        Err(Some(why)) if why.refuses_writes() => (StatusCode::SERVICE_UNAVAILABLE, "refusingWrites"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "down"),
    };
    // In words first: a refused login or certificate, or what Redis's refusal means.
    let redis_error = checked.err().map(|error| {
        refusal(&error).unwrap_or_else(|| match error.unavailable() {
            Some(why) => format!("{}: {error}", why.describe()),
            None => error.to_string(),
        })
    });
    let redis_up = status == StatusCode::OK;
    // It answers reads when it only refuses writes: its role and the lag can still be read.
    let redis_reads = redis_up || redis == "refusingWrites";
    let mut response = HttpResponse::build(status);
    if !redis_up {
        response.insert_header((header::RETRY_AFTER, RETRY_AFTER_S));
    }
    let redis = redis.to_string();
    let authenticated = request.extensions().get::<Authenticated>().is_none_or(|a| a.0);
    if !authenticated {
        return response.json(ServiceHealth {
            success: true,
            redis,
            redis_error: None,
            redis_address: None,
            redis_role: None,
            instance: None,
            reader: None,
            lag: None,
            actors: None,
            webhooks: None,
            bullmq: None,
        });
    }
    let (lag, redis_role) = if redis_reads {
        (state.store.events().lag().await.ok(), state.store.role().await.ok())
    } else {
        (None, None)
    };
    let (reader, actors, webhooks) = match &state.router {
        Some(router) => (
            router.reader.state().as_str(),
            Some(router.actors.len()),
            Some(router.webhooks.load(std::sync::atomic::Ordering::Relaxed)),
        ),
        None => ("disabled", None, None),
    };
    let bullmq = state
        .router
        .as_ref()
        .and_then(|router| router.bullmq.as_ref())
        .map(|source| source.state().as_str().to_string());
    response.json(ServiceHealth {
        success: true,
        redis,
        redis_error,
        redis_address: state.store.address(),
        redis_role: Some(redis_role),
        instance: Some(state.instance.to_string()),
        reader: Some(reader.to_string()),
        lag: Some(lag),
        actors: Some(actors),
        webhooks: Some(webhooks),
        bullmq,
    })
}

/// The webhook's delivery health: from its delivery actor when one runs on this instance;
/// otherwise (an idle webhook, whose actor stopped, or another instance delivers it) the
/// report its owner's actor last stored, with the backlog read now and the owner as it is now.
#[utoipa::path(get, path = "/webhooks/{id}/health", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookHealthResponse), NotFound, CommonErrors))]
pub async fn webhook(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let webhook = state.webhook(&id).await?;
    let id = webhook.id;
    let actor = state
        .router
        .as_ref()
        .and_then(|r| r.actors.get(&id).map(|running| running.addr.clone()));
    let report = match actor {
        Some(actor) => actor
            .send(GetHealth)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        None => stored_report(&state, &webhook).await?,
    };
    Ok(HttpResponse::Ok().json(WebhookHealthResponse { success: true, report }))
}

/// The owner now: the instance holding the webhook's lease, or for an idle webhook (no
/// lease) the live delivering instance that would deliver it; None when none delivers.
async fn owner(state: &ApiState, webhook: &Webhook) -> Result<Option<String>, ApiError> {
    let ttl = state.settings.leases.ttl();
    if let Some(holder) = state.store.leases(ttl).holder(&webhook.id).await? {
        return Ok(Some(holder));
    }
    let delivering: Vec<InstanceName> = state
        .store
        .instances(ttl)
        .live()
        .await?
        .into_iter()
        .filter(|member| member.delivering)
        .filter_map(|member| InstanceName::parse(&member.name).ok())
        .collect();
    Ok(owner_among(&delivering, &webhook.id).map(ToString::to_string))
}

/// A webhook without a report has simply had nothing to deliver yet (healthy) when an
/// instance owns it, rather than not been heard of (unknown).
async fn stored_report(state: &ApiState, webhook: &Webhook) -> Result<HealthReport, ApiError> {
    let queue = state.store.queue();
    let backlog = queue.backlog(&webhook.id).await?;
    let stored = queue.health(&webhook.id).await?;
    let instance = owner(state, webhook).await?;
    let delivering = instance.is_some();
    let mut report = stored
        .and_then(|json| serde_json::from_str::<HealthReport>(&json).ok())
        .unwrap_or_else(|| HealthReport {
            id: webhook.id.to_string(),
            state: if delivering {
                HealthState::Healthy
            } else {
                HealthState::Unknown
            },
            in_flight: 0,
            waiting: 0,
            backlog,
            consecutive_failures: 0,
            failing_since: None,
            last_success: None,
            last_failure: None,
            next_retry_at: None,
            next_probe_at: None,
            delivered: 0,
            failed: 0,
            dead_lettered: 0,
            instance: None,
            rates: Default::default(),
            flow: None,
            reported_at: iso8601(now_ms()),
        })
        .aged(now_ms());
    report.backlog = backlog;
    report.instance = instance;
    // The record is newer than any report on these two.
    if !webhook.enabled {
        report.state = HealthState::Disabled;
    } else if webhook.paused {
        report.state = HealthState::Paused;
    }
    Ok(report)
}

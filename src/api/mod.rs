//! The REST API (actix-web): webhooks in WildDuck's JSON shapes, event publishing, health.
//!
//! | route | handler |
//! |---|---|
//! | `GET /health` | [`health::service`] |
//! | `GET, POST /events` | [`event_history::list`], [`events::publish`] |
//! | `GET /events/{id}` | [`event_history::get`] |
//! | `GET /metrics` | [`metrics::render`] |
//! | `GET /instances` | [`instances::list`] |
//! | `GET /openapi.json` | [`openapi::serve`] (generated from the handlers) |
//! | `GET, POST /webhooks` | [`webhook_list::list`], [`webhooks::create`] |
//! | `GET, PUT, DELETE /webhooks/{id}` | [`webhooks::get`], [`webhooks::update`], [`webhooks::delete`] |
//! | `GET /webhooks/{id}/health` | [`health::webhook`] |
//! | `GET /webhooks/{id}/secret`, `POST /webhooks/{id}/secret/rotate` | [`controls::secret`], [`controls::rotate_secret`] |
//! | `POST /webhooks/{id}/pause`, `/resume`, `/retry` | [`controls::pause`], [`controls::resume`], [`controls::retry`] |
//! | `GET /webhooks/{id}/attempts` | [`history::attempts`] |
//! | `GET, DELETE /webhooks/{id}/dead` | [`history::dead_letters`], [`history::purge_dead`] |
//! | `POST /webhooks/{id}/dead/replay` | [`history::replay`] |
//! | `POST /webhooks/{id}/replay`, `GET /webhooks/{id}/replays` | [`replays::replay`], [`replays::list`] |
//! | `GET, DELETE /webhooks/{id}/replays/{n}` | [`replays::get`], [`replays::cancel`] |
//! | `GET /rejected` | [`history::rejected`] |
//! | `/dashboard`, `/dashboard/…` | [`dashboard`]: the live dashboard (page, view, ticket, stream) |
//!
//! Every error is JSON ([`errors::ApiError`]), including those actix would otherwise answer
//! itself: malformed or oversized bodies, bad query strings, unknown routes, wrong methods.

pub mod auth;
mod controls;
mod cursor;
pub mod dashboard;
pub mod errors;
mod event_history;
mod events;
mod health;
mod history;
mod input;
mod instances;
mod metrics;
pub mod openapi;
mod params;
mod replays;
mod requests;
mod responses;
mod webhook_list;
mod webhooks;

use std::sync::Arc;

use actix::Addr;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::{web, HttpRequest};

use crate::actors::bullmq_source::SourceStatus;
use crate::actors::queue_reader::ReaderStatus;
use crate::actors::supervisor::{ActorDirectory, Supervisor, WebhookChanged};
use crate::config::Settings;
use crate::domain::{InstanceName, Webhook, WebhookId};
use crate::security::{AccessTokens, Destinations};
use crate::store::{Store, WebhookChange, WriteMark};
use errors::ApiError;

/// The delivering side of this instance, when it has one.
#[derive(Clone)]
pub struct RouterHandle {
    pub supervisor: Addr<Supervisor>,
    pub actors: ActorDirectory,
    /// Webhooks the supervisor knows (with or without a running actor).
    pub webhooks: Arc<std::sync::atomic::AtomicUsize>,
    pub reader: Arc<ReaderStatus>,
    /// The BullMQ source's state, when `[bullmq] enabled`.
    pub bullmq: Option<Arc<SourceStatus>>,
}

/// What every handler can reach.
pub struct ApiState {
    /// This instance's name (`/health`).
    pub instance: InstanceName,
    pub store: Store,
    pub settings: Arc<Settings>,
    /// None on an API-only instance (`[webhooks] enabled = false`).
    pub router: Option<RouterHandle>,
    /// The SSRF guard's create/update check.
    pub destinations: Arc<Destinations>,
    pub access: AccessTokens,
    /// The tokens WildDuck issues, when `[api] wildduck_tokens` is on.
    pub wildduck: Option<auth::WildDuckTokens>,
    /// The dashboard's shared snapshot, text index and stop signal.
    pub dashboard: dashboard::Dashboard,
}

impl ApiState {
    /// The webhook a path names: 400 when the id is malformed, 404 `WebhookNotFound` when unknown.
    async fn webhook(&self, id: &str) -> Result<Webhook, ApiError> {
        let id = webhooks::parse_id(id)?;
        self.store.webhooks().get(&id).await?.ok_or(ApiError::WebhookNotFound)
    }

    /// Applies `change` to the webhook a path names and tells this instance's supervisor;
    /// the webhook as changed.
    async fn change(&self, id: &str, change: &WebhookChange) -> Result<Webhook, ApiError> {
        let id = webhooks::parse_id(id)?;
        let mark = self.store.before_write();
        let (webhook, version) = self
            .store
            .webhooks()
            .update(&id, change)
            .await?
            .ok_or(ApiError::WebhookNotFound)?;
        self.changed(id, Some(version), mark).await?;
        Ok(webhook)
    }

    /// Applies a webhook change to this instance's supervisor before answering, so an event
    /// published after the response is routed with the change. Other instances learn of it
    /// through the change feed. With `[redis] min_replicas_acked`, waits first until the
    /// change would survive a failover: too few replicas is a 503 (the change is made, and
    /// made again when retried). `mark`: taken before the change was written.
    async fn changed(&self, id: WebhookId, version: Option<u64>, mark: WriteMark) -> Result<(), ApiError> {
        self.store.replicated(mark).await?;
        if let Some(router) = &self.router {
            if let Err(error) = router.supervisor.send(WebhookChanged { id, version }).await {
                tracing::warn!(webhook = %id, %error, "could not tell the supervisor about a change");
            }
        }
        Ok(())
    }
}

/// Registers every route and the JSON error handlers.
pub fn configure(state: web::Data<ApiState>) -> impl FnOnce(&mut web::ServiceConfig) {
    let body_limit = state.settings.api.body_limit_bytes;
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(
                web::JsonConfig::default()
                    .limit(body_limit)
                    .content_type_required(false)
                    .error_handler(move |error, _| json_error(error, body_limit).into()),
            )
            .app_data(web::QueryConfig::default().error_handler(|error, _| query_error(error).into()))
            .app_data(web::PayloadConfig::default().limit(body_limit))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|error, _| ApiError::invalid("path", error.to_string()).into()),
            )
            .service(resource("/health").route(web::get().to(health::service)))
            .service(
                resource("/events")
                    .route(web::get().to(event_history::list))
                    .route(web::post().to(events::publish)),
            )
            .service(resource("/events/{id}").route(web::get().to(event_history::get)))
            .service(resource("/metrics").route(web::get().to(metrics::render)))
            .service(resource("/instances").route(web::get().to(instances::list)))
            .service(resource("/openapi.json").route(web::get().to(openapi::serve)))
            .service(
                resource("/webhooks")
                    .route(web::get().to(webhook_list::list))
                    .route(web::post().to(webhooks::create)),
            )
            .service(
                resource("/webhooks/{id}")
                    .route(web::get().to(webhooks::get))
                    .route(web::put().to(webhooks::update))
                    .route(web::delete().to(webhooks::delete)),
            )
            .service(resource("/webhooks/{id}/health").route(web::get().to(health::webhook)))
            .service(resource("/webhooks/{id}/secret").route(web::get().to(controls::secret)))
            .service(resource("/webhooks/{id}/secret/rotate").route(web::post().to(controls::rotate_secret)))
            .service(resource("/webhooks/{id}/pause").route(web::post().to(controls::pause)))
            .service(resource("/webhooks/{id}/resume").route(web::post().to(controls::resume)))
            .service(resource("/webhooks/{id}/retry").route(web::post().to(controls::retry)))
            .service(resource("/webhooks/{id}/attempts").route(web::get().to(history::attempts)))
            .service(
                resource("/webhooks/{id}/dead")
                    .route(web::get().to(history::dead_letters))
                    .route(web::delete().to(history::purge_dead)),
            )
            .service(resource("/webhooks/{id}/dead/replay").route(web::post().to(history::replay)))
            .service(resource("/webhooks/{id}/replay").route(web::post().to(replays::replay)))
            .service(resource("/webhooks/{id}/replays").route(web::get().to(replays::list)))
            .service(
                resource("/webhooks/{id}/replays/{n}")
                    .route(web::get().to(replays::get))
                    .route(web::delete().to(replays::cancel)),
            )
            .service(resource("/rejected").route(web::get().to(history::rejected)))
            .configure(dashboard::routes)
            .default_service(web::to(|request: HttpRequest| async move {
                Err::<actix_web::HttpResponse, _>(ApiError::RouteNotFound(request.path().to_string()))
            }));
    }
}

/// A resource whose unsupported methods get a JSON 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|request: HttpRequest| async move {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed(request.method().to_string()))
    }))
}

fn json_error(error: JsonPayloadError, limit: usize) -> ApiError {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(limit)
        }
        JsonPayloadError::Deserialize(e) => ApiError::invalid("body", format!("must be valid JSON ({e})")),
        JsonPayloadError::ContentType => ApiError::invalid("body", "must be JSON"),
        other => ApiError::invalid("body", format!("could not be read ({other})")),
    }
}

fn query_error(error: QueryPayloadError) -> ApiError {
    ApiError::invalid("query", format!("could not be parsed ({error})"))
}

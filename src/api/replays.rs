//! Replays: `POST /webhooks/{id}/replay` sends the retained events of a time range that the
//! webhook matches (as it is now) to it again, with their original delivery ids; the replay is
//! a resource (`GET /webhooks/{id}/replays`, `GET`/`DELETE /webhooks/{id}/replays/{n}`) that
//! any delivering instance runs (see `actors/replayer.rs`). `POST /webhooks` with `since`
//! starts one for the new webhook ([`start`]).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::errors::{ApiError, BodyErrors, CommonErrors, NotFound};
use super::input::Fields;
use super::requests::{parse_time, StartReplay};
use super::ApiState;
use crate::clock::{iso8601, now_ms};
use crate::domain::WebhookId;
use crate::store::{ReplayPhase, ReplayState};

/// A replay as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayView {
    /// Its number among the webhook's replays (`/webhooks/{id}/replays/{n}`).
    id: u64,
    /// The range of routing times replayed (ISO 8601, both included).
    since: String,
    until: String,
    only_undelivered: bool,
    /// `running`, `done` or `cancelled`.
    #[schema(value_type = String)]
    state: ReplayPhase,
    /// Retained events of the range the webhook matches, looked at so far.
    matched: u64,
    /// Of those, put on the webhook's queue so far (the others were delivered already, with
    /// `onlyUndelivered`).
    queued: u64,
    /// Of those, delivered (2xx) so far.
    delivered: u64,
    /// Where it is in the range: the routing time of the last event looked at.
    #[serde(skip_serializing_if = "Option::is_none")]
    reached: Option<String>,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished: Option<String>,
}

impl ReplayView {
    fn of(state: &ReplayState) -> ReplayView {
        ReplayView {
            id: state.id,
            since: iso8601(state.since),
            until: iso8601(state.until),
            only_undelivered: state.only_undelivered,
            state: state.state,
            matched: state.matched,
            queued: state.queued,
            delivered: state.delivered,
            reached: state.cursor().map(|c| iso8601(c.ms)),
            created: iso8601(state.created),
            finished: state.finished.map(iso8601),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReplayResponse {
    success: bool,
    replay: ReplayView,
}

#[derive(Serialize, ToSchema)]
pub struct ReplayList {
    success: bool,
    /// Newest first (the last 20).
    results: Vec<ReplayView>,
}

/// Starts a replay of `[since, until]` for a webhook that exists; None when it does not.
pub(super) async fn start(
    state: &ApiState,
    webhook: &WebhookId,
    range: (u64, u64),
    only_undelivered: bool,
) -> Result<Option<ReplayState>, ApiError> {
    let started = state.store.replays().create(webhook, range, only_undelivered).await?;
    if let Some(replay) = &started {
        tracing::info!(%webhook, replay = replay.id, since = range.0, until = range.1, only_undelivered, "replay started");
    }
    Ok(started)
}

/// Replay the retained events routed in a time range that the webhook matches (its types and
/// user as they are now) into its queue, with their original delivery ids.
#[utoipa::path(post, path = "/webhooks/{id}/replay", tag = "history", params(("id" = String, Path)),
    request_body = StartReplay,
    responses((status = 200, body = ReplayResponse), NotFound, BodyErrors, CommonErrors))]
pub async fn replay(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    super::webhooks::parse_id(&id)?;
    let mut fields = Fields::object(body.into_inner(), &["since", "until", "onlyUndelivered"])?;
    let since = fields.require("since", parse_time);
    let until = fields.parse("until", parse_time).unwrap_or_else(now_ms);
    let only_undelivered = fields
        .parse("onlyUndelivered", |v| {
            v.as_bool().ok_or_else(|| "must be true or false".to_string())
        })
        .unwrap_or(false);
    if let Some(since) = since.filter(|since| *since > until) {
        fields
            .errors
            .insert("until".into(), format!("must not be before since ({})", iso8601(since)));
    }
    fields.finish()?;
    let webhook = state.webhook(&id).await?.id;
    let since = since.unwrap_or_default();
    let replay = start(&state, &webhook, (since, until), only_undelivered)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    Ok(HttpResponse::Ok().json(ReplayResponse {
        success: true,
        replay: ReplayView::of(&replay),
    }))
}

/// The webhook's replays, newest first: running ones and the last ended ones.
#[utoipa::path(get, path = "/webhooks/{id}/replays", tag = "history", params(("id" = String, Path)),
    responses((status = 200, body = ReplayList), NotFound, CommonErrors))]
pub async fn list(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let webhook = state.webhook(&id).await?.id;
    let replays = state.store.replays().list(&webhook).await?;
    Ok(HttpResponse::Ok().json(ReplayList {
        success: true,
        results: replays.iter().map(ReplayView::of).collect(),
    }))
}

/// A replay's progress.
#[utoipa::path(get, path = "/webhooks/{id}/replays/{n}", tag = "history",
    params(("id" = String, Path), ("n" = u64, Path)),
    responses((status = 200, body = ReplayResponse), NotFound, BodyErrors, CommonErrors))]
pub async fn get(state: web::Data<ApiState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (webhook, n) = replay_path(&state, &path).await?;
    let replay = state.store.replays().get(&webhook, n).await?;
    answer(replay)
}

/// Cancel a running replay: it stops before its next batch (what it queued stays queued).
#[utoipa::path(delete, path = "/webhooks/{id}/replays/{n}", tag = "history",
    params(("id" = String, Path), ("n" = u64, Path)),
    responses((status = 200, body = ReplayResponse), NotFound, BodyErrors, CommonErrors))]
pub async fn cancel(state: web::Data<ApiState>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (webhook, n) = replay_path(&state, &path).await?;
    let replay = state.store.replays().cancel(&webhook, n).await?;
    if replay.is_some() {
        tracing::info!(%webhook, replay = n, "replay cancelled");
    }
    answer(replay)
}

/// The webhook and replay number a path names: 400 when malformed, 404 for an unknown webhook.
async fn replay_path(state: &ApiState, (id, n): &(String, String)) -> Result<(WebhookId, u64), ApiError> {
    super::webhooks::parse_id(id)?;
    let n = n
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::invalid("n", "must be a replay number (1, 2, …)"))?;
    Ok((state.webhook(id).await?.id, n))
}

fn answer(replay: Option<ReplayState>) -> Result<HttpResponse, ApiError> {
    let replay = replay.ok_or(ApiError::ReplayNotFound)?;
    Ok(HttpResponse::Ok().json(ReplayResponse {
        success: true,
        replay: ReplayView::of(&replay),
    }))
}

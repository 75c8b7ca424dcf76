//! What happened to deliveries: a webhook's attempt log and dead letters (with replay and
//! purge), and the event stream's rejected entries. Pages are newest first; `next` takes the
//! `nextCursor` of the previous page.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::errors::{ApiError, BodyErrors, CommonErrors, NotFound};
use super::input::{Fields, Query};
use super::requests::{PageParams, ReplayDeadLetters};
use super::responses::{Cursor, HistoryResponse, Purged, Replayed};
use super::webhook_list::{DEFAULT_LIMIT, MAX_LIMIT};
use super::{cursor, ApiState};
use crate::store::{AttemptView, DeadLetterView, HistoryCursor, HistoryPage, Notice, RejectedView};

/// Dead letters one replay request may name.
const MAX_REPLAY_IDS: usize = 1000;

/// `limit` and `next` of a history page.
fn paging(query: web::Query<HashMap<String, String>>) -> Result<(usize, Option<HistoryCursor>), ApiError> {
    let mut query = Query::new(query.into_inner());
    let limit = query.integer("limit", 1..=MAX_LIMIT, DEFAULT_LIMIT) as usize;
    let next = query.parse("next", |c| {
        cursor::decode_entry(c).ok_or_else(|| "must be a cursor from a previous response".to_string())
    });
    query.finish()?;
    Ok((limit, next))
}

fn page<T: Serialize + ToSchema>(page: HistoryPage<T>) -> HttpResponse {
    HttpResponse::Ok().json(HistoryResponse {
        success: true,
        next_cursor: Cursor(page.next.map(|next| cursor::encode_entry(&next))),
        results: page.results,
    })
}

/// The webhook's attempt log, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/attempts", tag = "history", params(("id" = String, Path), PageParams),
    responses((status = 200, body = HistoryResponse<AttemptView>), NotFound, BodyErrors, CommonErrors))]
pub async fn attempts(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let (limit, next) = paging(query)?;
    let id = state.webhook(&id).await?.id;
    Ok(page(state.store.history().attempts(&id, limit, next).await?))
}

/// The webhook's dead letters, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/dead", tag = "history", params(("id" = String, Path), PageParams),
    responses((status = 200, body = HistoryResponse<DeadLetterView>), NotFound, BodyErrors, CommonErrors))]
pub async fn dead_letters(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let (limit, next) = paging(query)?;
    let id = state.webhook(&id).await?.id;
    let ttl_ms = state.settings.dead_letters.ttl_ms;
    Ok(page(
        state.store.history().dead_letters(&id, limit, next, ttl_ms).await?,
    ))
}

/// Put dead letters back on the queue with a fresh attempt count: every one (no body, or
/// `{}`), or those named in `ids`.
#[utoipa::path(post, path = "/webhooks/{id}/dead/replay", tag = "history", params(("id" = String, Path)),
    request_body(content = Option<ReplayDeadLetters>),
    responses((status = 200, body = Replayed), NotFound, BodyErrors, CommonErrors))]
pub async fn replay(
    state: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ids = replay_ids(&body)?;
    let id = state.webhook(&id).await?.id;
    let mark = state.store.before_write();
    let replayed = state.store.history().replay_dead(&id, &ids).await?;
    if replayed > 0 {
        // Tell whichever instance delivers this webhook to read its queue.
        state.store.webhooks().announce(&Notice::Queue(id)).await?;
        state.changed(id, None, mark).await?;
    }
    Ok(HttpResponse::Ok().json(Replayed {
        success: true,
        replayed,
    }))
}

fn replay_ids(body: &[u8]) -> Result<Vec<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", format!("must be valid JSON ({e})")))?;
    let mut fields = Fields::object(value, &["ids"])?;
    let ids = fields.parse("ids", |value| {
        let rule = format!("must be a list of 1 to {MAX_REPLAY_IDS} delivery ids");
        let Value::Array(items) = value else { return Err(rule) };
        if items.is_empty() || items.len() > MAX_REPLAY_IDS {
            return Err(rule);
        }
        items
            .into_iter()
            .map(|item| match item {
                Value::String(id) if !id.is_empty() && id.len() <= 128 => Ok(id),
                _ => Err("must hold delivery ids (strings)".to_string()),
            })
            .collect()
    });
    fields.finish()?;
    Ok(ids.unwrap_or_default())
}

/// Delete every dead letter of the webhook.
#[utoipa::path(delete, path = "/webhooks/{id}/dead", tag = "history", params(("id" = String, Path)),
    responses((status = 200, body = Purged), NotFound, CommonErrors))]
pub async fn purge_dead(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = state.webhook(&id).await?.id;
    let deleted = state.store.history().purge_dead(&id).await?;
    Ok(HttpResponse::Ok().json(Purged { success: true, deleted }))
}

/// Event stream entries set aside as malformed, newest first.
#[utoipa::path(get, path = "/rejected", tag = "history", params(PageParams),
    responses((status = 200, body = HistoryResponse<RejectedView>), BodyErrors, CommonErrors))]
pub async fn rejected(
    state: web::Data<ApiState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let (limit, next) = paging(query)?;
    Ok(page(state.store.history().rejected(limit, next).await?))
}

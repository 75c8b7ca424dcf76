//! `GET /events` and `GET /events/{id}`: the retained events (`store/retained.rs`), newest first,
//! and one event with the state of each of its deliveries.
//!
//! An event's id is its entry id in the event stream: the part after the `:` of its delivery
//! ids (`<webhook>:<event id>`), and what `POST /events` answered. Times are routing times.
//! A page reads at most [`SCAN_PAGES`] batches of the retained stream whatever the filters, so
//! a filter that matches rarely answers with fewer results and a `nextCursor` to go on from:
//! a request never scans the whole history.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::errors::{ApiError, BodyErrors, CommonErrors};
use super::input::Query;
use super::requests::{parse_time_query, EventListParams};
use super::responses::{Cursor, HistoryResponse};
use super::webhook_list::{DEFAULT_LIMIT, MAX_LIMIT};
use super::{cursor, ApiState};
use crate::clock::{iso8601, now_ms};
use crate::domain::{normalize_type, StreamId, TypePattern, UserId};
use crate::store::{DeliveryView, Direction, HistoryCursor, RetainedEvent, MAX_SHOWN};

/// Retained entries read per batch of a page.
const SCAN_BATCH: usize = 250;
/// Batches one page reads at most.
const SCAN_PAGES: usize = 20;

/// A retained event as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// Its id in the event stream (the part after `:` of its delivery ids).
    id: String,
    ev: String,
    user: Option<String>,
    /// When it was routed (ISO 8601).
    routed: String,
    /// The body as delivered, without `id`.
    #[schema(value_type = Object)]
    event: serde_json::Value,
    /// Webhooks it was queued for when routed.
    deliveries: usize,
}

impl EventView {
    fn of(kept: &RetainedEvent) -> EventView {
        EventView {
            id: kept.event.to_string(),
            ev: kept.ev.to_string(),
            user: kept.user.as_ref().map(ToString::to_string),
            routed: iso8601(kept.retained.ms),
            event: kept.body(),
            deliveries: kept.went.len(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    success: bool,
    #[serde(flatten)]
    event: EventView,
    /// Each webhook it was queued for (the first 100), with where its delivery stands and its
    /// attempts. Replays of it to webhooks it was not routed to are not listed.
    results: Vec<DeliveryView>,
}

/// Retained events, newest first, routed in `[since, until]`, of a type (or pattern) and user.
#[utoipa::path(get, path = "/events", tag = "events", params(EventListParams),
    responses((status = 200, body = HistoryResponse<EventView>), BodyErrors, CommonErrors))]
pub async fn list(
    state: web::Data<ApiState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut query = Query::new(query.into_inner());
    let since = query.parse("since", parse_time_query).unwrap_or(0);
    let until = query.parse("until", parse_time_query).unwrap_or_else(now_ms);
    let pattern = query.parse_unless_empty("type", true, |text| TypePattern::parse(&normalize_type(text)));
    let user = query.parse_unless_empty("user", true, UserId::parse);
    let limit = query.integer("limit", 1..=MAX_LIMIT, DEFAULT_LIMIT) as usize;
    let next = query.parse("next", |c| {
        cursor::decode_entry(c).ok_or_else(|| "must be a cursor from a previous response".to_string())
    });
    query.only(&["since", "until", "type", "user", "limit", "next"]);
    if since > until {
        query
            .errors
            .insert("until".into(), format!("must not be before since ({})", iso8601(since)));
    }
    query.finish()?;
    let retained = state.store.retained();
    let mut after = next.map(|c| c.entry);
    let mut results = Vec::with_capacity(limit);
    let wanted = |kept: &&RetainedEvent| {
        pattern.as_ref().is_none_or(|p| p.matches(&kept.ev))
            && user.as_ref().is_none_or(|u| kept.user.as_ref() == Some(u))
    };
    let mut more = false;
    'scan: for _ in 0..SCAN_PAGES {
        let page = retained
            .read((since, until), after, SCAN_BATCH, Direction::Backward)
            .await?;
        for kept in page.events.iter().filter(wanted) {
            if results.len() == limit {
                more = true;
                break 'scan;
            }
            after = Some(kept.retained);
            results.push(EventView::of(kept));
        }
        more = page.more;
        if !page.more || results.len() == limit {
            break;
        }
        // Go on after everything this batch read (or, when the budget runs out, the next
        // page does).
        after = page.last;
    }
    let next = more
        .then_some(after)
        .flatten()
        .map(|entry| HistoryCursor { entry, within: None });
    Ok(HttpResponse::Ok().json(HistoryResponse {
        success: true,
        next_cursor: Cursor(next.map(|next| cursor::encode_entry(&next))),
        results,
    }))
}

/// One retained event, with the state of each of its deliveries and their attempts.
#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = String, Path)),
    responses((status = 200, body = EventDetail), (status = 404, description = "`EventNotFound`: no retained event has this id (never routed, or trimmed)", body = super::responses::ErrorBody), BodyErrors, CommonErrors))]
pub async fn get(state: web::Data<ApiState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let event = StreamId::parse(&id)
        .ok_or_else(|| ApiError::invalid("id", "must be an event id, <ms>-<seq> (as POST /events answers)"))?;
    let retained = state.store.retained();
    let kept = retained.get(event).await?.ok_or(ApiError::EventNotFound)?;
    let results = retained.deliveries(&kept).await?;
    debug_assert!(results.len() <= MAX_SHOWN);
    Ok(HttpResponse::Ok().json(EventDetail {
        success: true,
        event: EventView::of(&kept),
        results,
    }))
}

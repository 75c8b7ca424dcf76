//! `GET /webhooks`: the webhooks, oldest first, as WildDuck lists them (`lib/api/webhooks.js`).
//!
//! Filters: `type` (lowercased; a list containing exactly it), `user` (a WildDuck user id,
//! lowercased) and hookrouter's own `event`; an empty `type=`, `event=`, `next=` or `previous=`
//! is no filter, and other parameters are ignored, as there. `sess` and `ip` are checked.
//! Paging follows WildDuck 1.45: `limit` 1–250 (default 20); `next` wins over `previous`;
//! `previous` is followed when `page` is 0 or above 1 (going back to page 1 is the first
//! page), and, as newer WildDuck does, when no `page` is given. `page` is echoed when there is
//! an earlier page (the cursor's page when none was given), 1 otherwise. The answer echoes the
//! `type` filter and the `user` whose webhooks these are (null for all).
//!
//! A WildDuck token of role `user` sees only its user's webhooks (`read:own`), whatever `user`
//! says; `user=me` is that user.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Caller;
use super::cursor::{self, ListCursor};
use super::errors::{ApiError, BodyErrors, CommonErrors};
use super::input::Query;
use super::params;
use super::requests::ListParams;
use super::responses::{Cursor, WebhookList};
use super::webhooks::WebhookView;
use super::ApiState;
use crate::domain::js_number::{joi_number, JsNumber};
use crate::domain::{normalize_type, EventType, UserId, WebhookId};
use crate::store::{ListDirection, ListQuery};

pub const MAX_LIMIT: u64 = 250;
pub const DEFAULT_LIMIT: u64 = 20;
/// The longest `type` filter WildDuck takes, in characters.
const MAX_TYPE_FILTER: usize = 128;

/// What a request asks for, once read.
struct ListRequest {
    type_filter: Option<String>,
    event: Option<EventType>,
    user: Option<UserId>,
    limit: u64,
    page: Option<f64>,
    next: Option<ListCursor>,
    previous: Option<ListCursor>,
}

impl ListRequest {
    fn read(request: &HttpRequest, caller: &Caller) -> Result<ListRequest, ApiError> {
        let mut params = params::parse(request.query_string());
        params::me(&mut params, caller.object_id_user());
        let mut query = Query::from_params(params);
        query.session();
        let type_filter = query.parse_unless_empty("type", false, |text| {
            let text = text.to_lowercase();
            match text.chars().count() {
                n if n > MAX_TYPE_FILTER => Err(format!("must be at most {MAX_TYPE_FILTER} characters")),
                _ => Ok(text),
            }
        });
        let event = query.parse_unless_empty("event", false, |e| EventType::parse(&normalize_type(e)));
        let user = query.parse("user", UserId::parse_object_id);
        let limit_rule = || format!("must be a number from 1 to {MAX_LIMIT}");
        let limit = query
            .parse("limit", |text| {
                joi_number(text)
                    .filter(|n| (1.0..=MAX_LIMIT as f64).contains(n))
                    .map(|n| n as u64)
                    .ok_or_else(limit_rule)
            })
            .unwrap_or(DEFAULT_LIMIT);
        let page = query.parse("page", |text| {
            joi_number(text).ok_or_else(|| "must be a number".to_string())
        });
        let cursor_rule =
            |text: &str| cursor::decode(text).ok_or_else(|| "must be a cursor from a previous response".to_string());
        let next = query.parse_unless_empty("next", true, cursor_rule);
        let previous = query.parse_unless_empty("previous", true, cursor_rule);
        query.finish()?;
        Ok(ListRequest {
            type_filter,
            event,
            user,
            limit,
            page,
            next,
            previous,
        })
    }

    /// Where the page starts: `next` wins; `previous` is followed unless `page` says the page
    /// wanted is the first (WildDuck 1.45: `(!page || page > 1) && previous`).
    fn cursor(&self) -> Option<(ListDirection, ListCursor)> {
        match (self.next, self.previous) {
            (Some(next), _) => Some((ListDirection::Next, next)),
            (None, Some(previous)) if self.page.is_none_or(|page| page == 0.0 || page > 1.0) => {
                Some((ListDirection::Previous, previous))
            }
            _ => None,
        }
    }
}

/// List webhooks, oldest first.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(ListParams),
    responses((status = 200, body = WebhookList), BodyErrors, CommonErrors))]
pub async fn list(state: web::Data<ApiState>, caller: Caller, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let asked = ListRequest::read(&request, &caller)?;
    // Rights come after the input checks, as in WildDuck; `read:own` lists the caller's own.
    let user = match (caller.grants.read_any, caller.grants.read_own, caller.object_id_user()) {
        (true, _, _) => asked.user.clone(),
        (false, true, Some(own)) => Some(UserId::parse_object_id(own).map_err(|_| ApiError::MissingPrivileges)?),
        _ => return Err(ApiError::MissingPrivileges),
    };
    let cursor = asked.cursor();
    let list_query = ListQuery {
        user: user.clone(),
        type_pattern: asked.type_filter.clone(),
        event: asked.event.clone(),
        limit: asked.limit as usize,
        cursor: cursor.map(|(direction, at)| (direction, at.id)),
    };
    let found = state.store.webhooks().list(&list_query).await?;
    let page = if found.has_previous {
        asked
            .page
            .or_else(|| cursor.and_then(|(_, at)| at.page).map(|p| p as f64))
            .unwrap_or(1.0)
    } else {
        1.0
    };
    // The pages the cursors lead to, for clients that do not count (see `cursor`).
    let here = page.max(1.0) as u64;
    let cursor_at = |present: bool, direction, id: Option<WebhookId>, page: u64| {
        Cursor(id.filter(|_| present).map(|id| cursor::encode(direction, &id, page)))
    };
    let first = found.results.first().map(|w| w.id);
    let last = found.results.last().map(|w| w.id);
    Ok(HttpResponse::Ok().json(WebhookList {
        success: true,
        type_filter: asked.type_filter,
        user: user.as_ref().map(ToString::to_string),
        total: found.total,
        page: JsNumber(page),
        previous_cursor: cursor_at(
            found.has_previous,
            ListDirection::Previous,
            first,
            here.saturating_sub(1).max(1),
        ),
        next_cursor: cursor_at(found.has_next, ListDirection::Next, last, here + 1),
        results: found.results.iter().map(WebhookView::of).collect(),
    }))
}

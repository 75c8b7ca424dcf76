//! `POST /events`: publish one event (a JSON object) or several (an array) to the stream,
//! validated exactly as the queue reader validates stream entries.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde_json::Value;

use super::errors::{ApiError, BodyErrors, CommonErrors};
use super::requests::PublishEvents;
use super::responses::{PublishResponse, Published, PublishedBatch};
use super::ApiState;
use crate::domain::Event;

/// Events one request may publish.
pub const MAX_BATCH: usize = 1000;

/// Publish one event or an array of 1–1000 to the event stream, all or none.
#[utoipa::path(post, path = "/events", tag = "events", request_body = PublishEvents,
    responses((status = 200, body = PublishResponse), BodyErrors, CommonErrors))]
pub async fn publish(state: web::Data<ApiState>, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    let max_bytes = state.settings.events.max_bytes;
    let (items, batch) = match body.into_inner() {
        Value::Array(items) => (items, true),
        single => (vec![single], false),
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::invalid("body", format!("must hold 1 to {MAX_BATCH} events")));
    }
    let mut events = Vec::with_capacity(items.len());
    let mut errors = BTreeMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let size = item.to_string().len();
        let parsed = if size > max_bytes {
            Err((
                "event",
                format!("is {size} bytes, larger than the limit of {max_bytes}"),
            ))
        } else {
            Event::from_value(item).map_err(|e| (e.field, e.rule))
        };
        match parsed {
            Ok(event) => events.push(event),
            Err((field, rule)) => {
                let field = match (batch, field) {
                    (true, "event") => i.to_string(),
                    (true, field) => format!("{i}.{field}"),
                    (false, field) => field.to_string(),
                };
                errors.insert(field, rule);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InputValidation(errors));
    }
    let mark = state.store.before_write();
    let ids = state.store.events().publish(&events).await?;
    // Acknowledged only once it would survive a failover ([redis] min_replicas_acked).
    state.store.replicated(mark).await?;
    let mut ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Ok(HttpResponse::Ok().json(match (batch, ids.pop()) {
        (false, Some(id)) => PublishResponse::One(Published { success: true, id }),
        (_, last) => {
            ids.extend(last);
            PublishResponse::Many(PublishedBatch { success: true, ids })
        }
    }))
}

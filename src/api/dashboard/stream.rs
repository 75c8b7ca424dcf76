//! `GET /dashboard/stream?ticket=…&<filter>`: Server-Sent Events, one `view` event (a
//! [`super::view::View`] as JSON) every half second for the filter in the URL.
//!
//! It opens with a ticket (`POST /dashboard/ticket`), used up on the way in. When Redis cannot
//! be read a `problem` event says so, and the stream goes on. When the service stops, every
//! stream gets a `closing` event and ends at once, so a graceful stop never waits for open
//! dashboards; the page then reconnects with a new ticket until the service answers again.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::view::{view, Filter, ViewParams};
use crate::api::errors::ApiError;
use crate::api::input::Query;
use crate::api::responses::ErrorBody;
use crate::api::ApiState;
use crate::security::tickets;
use crate::store::Unavailable;

/// How often a stream sends the view.
const STREAM_EVERY: Duration = Duration::from_millis(500);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StreamParams {
    /// From `POST /dashboard/ticket`; single use.
    #[param(max_length = 100)]
    ticket: String,
}

/// Live updates of the dashboard's table for a filter, as Server-Sent Events: `view` every
/// half second, `problem` when Redis cannot be read, `closing` when the service stops.
#[utoipa::path(get, path = "/dashboard/stream", tag = "dashboard", security(()), params(StreamParams, ViewParams),
    responses(
        (status = 200, content_type = "text/event-stream", body = StreamEvent,
            description = "`event: view` with a View as `data`, every half second"),
        (status = 400, body = ErrorBody, description = "`InputValidationError`: a bad filter"),
        (status = 401, body = ErrorBody, description = "`InvalidTicket`: no ticket, or one used, expired or never issued"),
        (status = 500, body = ErrorBody, description = "`InternalError`"),
        (status = 503, body = ErrorBody, description = "`ServiceUnavailable`: Redis cannot serve now (unreachable, loading, failing over)",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))))]
pub async fn stream(
    state: web::Data<ApiState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut query = Query::new(query.into_inner());
    let ticket = query.parse("ticket", |ticket| Ok::<_, String>(ticket.to_string()));
    let filter = Filter::read(&mut query);
    query.finish()?;
    let Some(ticket) = ticket.filter(|t| !t.is_empty() && t.len() <= 100) else {
        return Err(ApiError::InvalidTicket);
    };
    if !state.store.tickets().redeem(&tickets::digest(&ticket)).await? {
        return Err(ApiError::InvalidTicket);
    }
    let feed = Feed {
        stopping: state.dashboard.stopping.clone(),
        state,
        filter,
        tick: actix_rt::time::interval(STREAM_EVERY),
        ended: false,
    };
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, actix_web::Error>(event), feed))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store"))
        // Proxies such as nginx would otherwise hold events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events))
}

/// One open stream.
struct Feed {
    state: web::Data<ApiState>,
    filter: Filter,
    tick: actix_rt::time::Interval,
    stopping: tokio::sync::watch::Receiver<bool>,
    ended: bool,
}

impl Feed {
    /// The next event; None once the stream has ended.
    async fn next(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        tokio::select! {
            _ = self.tick.tick() => {}
            _ = self.stopping.wait_for(|stopping| *stopping) => {
                self.ended = true;
                return Some(event("closing", r#"{"reason":"the service is stopping"}"#));
            }
        }
        Some(match view(&self.state, &self.filter).await {
            Ok(view) => event("view", &serde_json::to_string(&view).unwrap_or_default()),
            Err(error) => {
                let redis = match error {
                    ApiError::Unavailable(Unavailable::Loading) => "loading",
                    ApiError::Unavailable(_) => "down",
                    _ => "up",
                };
                if let ApiError::Internal(cause) = &error {
                    tracing::warn!(%cause, "dashboard stream could not make its view");
                }
                let problem = serde_json::json!({ "error": error.to_string(), "redis": redis });
                event("problem", &problem.to_string())
            }
        })
    }
}

/// One event of the stream as Server-Sent Events carry it: its name and one line of JSON
/// (for the OpenAPI document, which describes each event of an event stream).
pub struct StreamEvent;

impl PartialSchema for StreamEvent {
    fn schema() -> RefOr<Schema> {
        let problem = json!({"type": "object", "required": ["error", "redis"], "properties": {
            "error": {"type": "string"}, "redis": {"type": "string", "enum": ["up", "loading", "down"]}}});
        let closing = json!({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}});
        let content = json!({"oneOf": [{"$ref": "#/components/schemas/View"}, problem, closing]});
        let data = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "JSON: a View for `view`, `{\"error\", \"redis\"}` for `problem`, `{\"reason\"}` for `closing`",
            ))
            .content_media_type("application/json")
            .extensions(Some(Extensions::from_iter([("contentSchema", content)])));
        let event = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["view", "problem", "closing"]));
        ObjectBuilder::new()
            .property("event", event)
            .required("event")
            .property("data", data)
            .required("data")
            .into()
    }
}

impl ToSchema for StreamEvent {}

/// An SSE event. `data` is one line of JSON (serde_json never writes a raw newline).
fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

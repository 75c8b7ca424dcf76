//! `GET /metrics`: Prometheus text format (see [`crate::metrics`] for the series).

use actix_web::{web, HttpResponse};

use super::errors::{ApiError, CommonErrors};
use super::ApiState;

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String), CommonErrors))]
pub async fn render(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    // Scrape-time gauges: read now rather than tracked, since Redis has them exactly.
    let webhooks = state.store.webhooks().ids().await.ok();
    let backlog = match webhooks {
        Some(ids) => state
            .store
            .queue()
            .startup_states(&ids)
            .await
            .ok()
            .map(|states| states.iter().map(|(backlog, _)| backlog).sum()),
        None => None,
    };
    let lag = state.store.events().lag().await.ok();
    let actors = state.router.as_ref().map(|router| router.actors.len());
    let hosts = crate::actors::delivery::host_figures();
    let body = crate::metrics::render(backlog, lag, actors, &hosts);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

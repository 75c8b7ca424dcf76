//! `POST /dashboard/ticket`: a ticket for one stream, for a caller with a valid access token
//! (the auth middleware sees to that). `EventSource` cannot send a header, and a token in a URL
//! would land in access logs; a ticket there is worthless once used or after 30 s.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::errors::{ApiError, CommonErrors};
use crate::api::ApiState;
use crate::clock::{iso8601, now_ms};
use crate::security::tickets;

/// How long a ticket waits to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketResponse {
    pub success: bool,
    /// Pass as `ticket` to `GET /dashboard/stream`: it opens one stream, within 30 seconds.
    pub ticket: String,
    pub expires_at: String,
}

/// A single-use ticket for `GET /dashboard/stream`, valid for 30 seconds on any instance.
#[utoipa::path(post, path = "/dashboard/ticket", tag = "dashboard",
    responses((status = 200, body = TicketResponse), CommonErrors))]
pub async fn ticket(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let (ticket, digest) = tickets::generate();
    state.store.tickets().issue(&digest, TICKET_TTL).await?;
    Ok(HttpResponse::Ok().json(TicketResponse {
        success: true,
        ticket,
        expires_at: iso8601(now_ms() + TICKET_TTL.as_millis() as u64),
    }))
}

//! `GET /instances`: the live hookrouter instances sharing this Redis prefix.

use actix_web::{web, HttpResponse};

use super::errors::{ApiError, CommonErrors};
use super::responses::{InstanceList, InstanceView};
use super::ApiState;
use crate::clock::iso8601;

/// The instances alive now (heard from within `[leases] ttl_ms`), by name: whether each
/// delivers, how many webhooks it owns, when it started and when it was last heard from.
#[utoipa::path(get, path = "/instances", tag = "health",
    responses((status = 200, body = InstanceList), CommonErrors))]
pub async fn list(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let live = state.store.instances(state.settings.leases.ttl()).live().await?;
    Ok(HttpResponse::Ok().json(InstanceList {
        success: true,
        results: live
            .into_iter()
            .map(|member| InstanceView {
                name: member.name,
                delivering: member.delivering,
                webhooks: member.webhooks,
                started_at: iso8601(member.started_ms),
                last_seen: iso8601(member.last_seen_ms),
            })
            .collect(),
    }))
}

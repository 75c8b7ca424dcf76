//! Access control: every route needs a valid token once `[api] access_tokens` is set, except
//! `GET /health` (which then hides its details from callers without one),
//! `GET /openapi.json`, which probes and tools read, the dashboard's page, script and style
//! sheet (they hold no data) and its stream, which takes a ticket instead (see
//! [`super::dashboard`]).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::errors::ApiError;
use super::ApiState;

/// Whether the request carried a valid token (or none is needed); set on every request.
#[derive(Clone, Copy)]
pub struct Authenticated(pub bool);

/// Paths anyone may call.
const OPEN_PATHS: &[&str] = &["/health", "/openapi.json"];

pub async fn require_token(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let granted = match request.app_data::<web::Data<ApiState>>() {
        Some(state) if !state.access.is_empty() => {
            let presented = super::AccessTokens::presented(request.headers(), request.query_string());
            presented.is_some_and(|token| state.access.accepts(&token))
        }
        _ => true,
    };
    request.extensions_mut().insert(Authenticated(granted));
    let open = OPEN_PATHS.contains(&request.path()) || super::dashboard::is_open(request.path());
    if granted || open {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let (request, _) = request.into_parts();
    let response = actix_web::ResponseError::error_response(&ApiError::InvalidToken);
    Ok(ServiceResponse::new(request, response).map_into_right_body())
}

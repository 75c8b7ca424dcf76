//! The API's one error shape: `{"error": "<message>", "code": "<Code>"}`, plus `details` (field →
//! rule broken) for input errors. Every failure the API can produce, including malformed
//! bodies, oversized bodies, unknown routes and wrong methods, goes through [`ApiError`], so a
//! client never sees an HTML or plain-text error.

use std::collections::BTreeMap;

use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use utoipa::IntoResponses;

use super::responses::ErrorBody;

use crate::store::{note_outage, StoreError, Unavailable};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the fields that were wrong, each with the rule it broke.
    #[error("Invalid input: {}", describe(.0))]
    InputValidation(BTreeMap<String, String>),
    /// 404, with WildDuck's words.
    #[error("Invalid or unknown webhook identifier")]
    WebhookNotFound,
    /// 404: the webhook has no replay with that number (or it was dropped: 20 are kept).
    #[error("No such replay of this webhook")]
    ReplayNotFound,
    /// 404: no retained event has that id (never routed, or trimmed by retention).
    #[error("No retained event with this id (events are kept for [events] retain_ms after their routing)")]
    EventNotFound,
    /// 403 (as WildDuck answers): no access token where one is needed, or not a valid one.
    #[error("Invalid accessToken value")]
    InvalidToken,
    /// 403: a valid token whose role may not do this (a WildDuck `user` token creating a
    /// webhook, say).
    #[error("Not enough privileges")]
    MissingPrivileges,
    /// 401: the dashboard stream's ticket is missing, used, expired or unknown.
    #[error("A valid ticket is required: get one with POST /dashboard/ticket (each opens one stream, within 30 s)")]
    InvalidTicket,
    #[error("No such route: {0}")]
    RouteNotFound(String),
    #[error("Method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("Request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 500. The cause is logged, never returned.
    #[error("Internal error")]
    Internal(String),
    /// 503 with `Retry-After`: Redis cannot serve now (down, loading, failing over...) and the
    /// same request will succeed once it can.
    #[error("Service unavailable: {}; try again", .0.describe())]
    Unavailable(Unavailable),
}

/// The `Retry-After` (seconds) of a 503: Redis restarts and loads in seconds, and a producer
/// that waits one is back as soon as it can be served.
pub const RETRY_AFTER_S: u64 = 1;

fn describe(details: &BTreeMap<String, String>) -> String {
    details
        .iter()
        .map(|(field, rule)| format!("{field} {rule}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// A 400 naming one field.
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> ApiError {
        ApiError::InputValidation(BTreeMap::from([(field.into(), rule.into())]))
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::InputValidation(_) => "InputValidationError",
            ApiError::WebhookNotFound => "WebhookNotFound",
            ApiError::ReplayNotFound => "ReplayNotFound",
            ApiError::EventNotFound => "EventNotFound",
            ApiError::InvalidToken => "InvalidToken",
            ApiError::MissingPrivileges => "MissingPrivileges",
            ApiError::InvalidTicket => "InvalidTicket",
            ApiError::RouteNotFound(_) => "RouteNotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::PayloadTooLarge(_) => "PayloadTooLarge",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
        }
    }
}

/// A Redis error is a 503 when it means "not now" ([`StoreError::unavailable`]; logged once per
/// outage), and a 500 only when it is a bug.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error.unavailable() {
            Some(reason) => {
                note_outage(reason, "the API (answering 503)", &error);
                ApiError::Unavailable(reason)
            }
            None => ApiError::Internal(error.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InputValidation(_) => StatusCode::BAD_REQUEST,
            ApiError::WebhookNotFound
            | ApiError::ReplayNotFound
            | ApiError::EventNotFound
            | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidToken | ApiError::MissingPrivileges => StatusCode::FORBIDDEN,
            ApiError::InvalidTicket => StatusCode::UNAUTHORIZED,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(%cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_S));
        }
        response.json(ErrorBody {
            error: self.to_string(),
            code: self.code().to_string(),
            details: match self {
                ApiError::InputValidation(details) => Some(details.clone()),
                _ => None,
            },
            message: matches!(self, ApiError::InvalidToken).then(|| self.to_string()),
        })
    }
}

/// A safety net for errors actix answers itself without asking us (a body over the limit
/// read as raw bytes, say): any error response that is not JSON is replaced by our shape.
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|response: ServiceResponse<B>| {
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
        }
        let status = response.status();
        let (message, code) = match status {
            StatusCode::BAD_REQUEST => ("Invalid input: the request could not be read", "InputValidationError"),
            StatusCode::UNAUTHORIZED => ("Unauthorized", "InvalidTicket"),
            StatusCode::FORBIDDEN => ("Invalid accessToken value", "InvalidToken"),
            StatusCode::NOT_FOUND => ("No such route", "RouteNotFound"),
            StatusCode::METHOD_NOT_ALLOWED => ("Method not allowed here", "MethodNotAllowed"),
            StatusCode::PAYLOAD_TOO_LARGE => ("Request body is larger than the limit", "PayloadTooLarge"),
            s if s.is_server_error() => ("Internal error", "InternalError"),
            _ => ("Request refused", "RequestError"),
        };
        let (request, _) = response.into_parts();
        let body = HttpResponse::build(status).json(ErrorBody {
            error: message.to_string(),
            code: code.to_string(),
            details: None,
            message: None,
        });
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(request, body)
                .map_into_boxed_body()
                .map_into_right_body(),
        ))
    })
}

// The error responses each route documents in the OpenAPI document.

/// Errors any route can answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// `InvalidToken`: a token is needed (or was given) and it is not valid; or
    /// `MissingPrivileges`: a WildDuck-issued token whose role may not do this.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// `InternalError`; the cause is logged, not returned.
    #[response(status = 500)]
    Internal(#[to_schema] ErrorBody),
    /// `ServiceUnavailable`: Redis cannot serve now (unreachable, loading its data, failing
    /// over); the same request succeeds once it can.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
    Unavailable(#[to_schema] ErrorBody),
}

/// For routes with a webhook id.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotFound {
    /// `InputValidationError`: the id is not 24 hexadecimal characters.
    #[response(status = 400)]
    Malformed(#[to_schema] ErrorBody),
    /// `WebhookNotFound` ("Invalid or unknown webhook identifier"): no webhook has this id.
    #[response(status = 404)]
    Webhook(#[to_schema] ErrorBody),
}

/// For routes that read a body or query parameters.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// `InputValidationError`, with `details` naming each bad field and the rule it broke.
    #[response(status = 400)]
    Invalid(#[to_schema] ErrorBody),
    /// `PayloadTooLarge`: the body is over `[api] body_limit_bytes`.
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
}

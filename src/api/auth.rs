//! Access control, as WildDuck's API does it (`api.js`).
//!
//! A request's token comes from the `accessToken` query parameter, the `X-Access-Token` header
//! or the `Authorization` header (`Bearer` optional), in that order. A token is needed once
//! `[api] access_tokens` is set or `[api] wildduck_tokens` is on; a token that is given is
//! checked even when none is needed (as WildDuck does). A missing or bad one is 403
//! `InvalidToken`. Who the caller is ([`Caller`]) is set on every request:
//!
//! - an **operator**: a configured access token, a WildDuck token with role `root`, or anyone
//!   on an open API: every route;
//! - a **WildDuck token** of another role (`[api] wildduck_tokens`): WildDuck's own webhook
//!   routes only (`GET`/`POST /webhooks`, `DELETE /webhooks/{id}`), with the rights
//!   `config/roles.json` gives the role (`manager` and `webmail` all, `user` reading its own
//!   webhooks); anything else is 403 `MissingPrivileges`.
//!
//! Open to anyone: `GET /health` (which hides its details from non-operators),
//! `GET /openapi.json`, the dashboard's page, script and style sheet (they hold no data) and
//! its stream, which takes a ticket instead (see [`super::dashboard`]).

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::errors::ApiError;
use super::ApiState;
use crate::clock::now_ms;
use crate::security::wildduck_tokens::{is_wildduck_token, judge, role_grants, Grants, Judgement, OPERATOR};
use crate::security::AccessTokens;
use crate::store::WildDuckTokenStore;

/// Whether the request carried an operator's token (or none is needed); set on every request.
/// `/health` shows its details only then.
#[derive(Clone, Copy)]
pub struct Authenticated(pub bool);

/// Who is calling, and what they may do with webhooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The webhook rights of the caller's role ([`OPERATOR`] for operators).
    pub grants: Grants,
    /// The user a WildDuck token belongs to: "own" webhooks are this user's.
    pub user: Option<String>,
}

impl Caller {
    pub const OPERATOR: Caller = Caller {
        grants: OPERATOR,
        user: None,
    };

    /// Whether `user` (a webhook's) is the caller's own.
    pub fn owns(&self, user: Option<&str>) -> bool {
        self.user.is_some() && self.user.as_deref() == user
    }

    /// The caller's user when it is a WildDuck user id: what `user=me` stands for, and what
    /// "own" webhooks are filtered by.
    pub fn object_id_user(&self) -> Option<&str> {
        self.user.as_deref().filter(|user| crate::domain::is_object_id(user))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The middleware sets it on every request; without it, nothing is granted.
        let caller = request.extensions().get::<Caller>().cloned();
        ready(caller.ok_or(ApiError::InvalidToken))
    }
}

/// Checking the tokens WildDuck issues (`[api] wildduck_tokens`).
pub struct WildDuckTokens {
    pub store: WildDuckTokenStore,
    /// WildDuck's HMAC secret.
    pub secret: Arc<[u8]>,
    pub lifetime_s: u64,
}

impl WildDuckTokens {
    /// The caller a WildDuck token stands for; None when it is not a good one.
    async fn caller(&self, token: &str) -> Result<Option<Caller>, ApiError> {
        if !is_wildduck_token(token) {
            return Ok(None);
        }
        let digest = crate::security::tickets::digest(token);
        let fields = self.store.read(&digest).await?;
        match judge(token, &fields, &self.secret, self.lifetime_s, now_ms()) {
            Judgement::Valid { role, user, extend_s } => {
                if let Some(ttl) = extend_s {
                    self.store.extend(&digest, ttl).await;
                }
                let grants = role_grants(&role).unwrap_or_default();
                let user = (!grants.everything).then_some(user);
                Ok(Some(Caller { grants, user }))
            }
            Judgement::Expired => {
                self.store.delete(&digest).await;
                Ok(None)
            }
            Judgement::Invalid => Ok(None),
        }
    }
}

/// Paths anyone may call.
const OPEN_PATHS: &[&str] = &["/health", "/openapi.json"];

/// WildDuck's webhook routes: the only ones its non-root tokens reach.
fn is_wildduck_route(method: &Method, path: &str) -> bool {
    match path.strip_prefix("/webhooks") {
        Some("") => method == Method::GET || method == Method::POST,
        Some(rest) => {
            method == Method::DELETE
                && rest
                    .strip_prefix('/')
                    .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        }
        None => false,
    }
}

pub async fn require_token(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let caller = match request.app_data::<web::Data<ApiState>>() {
        Some(state) => identify(state, &request).await,
        None => Ok(Some(Caller::OPERATOR)),
    };
    let refusal = match caller {
        Ok(Some(caller)) => {
            request.extensions_mut().insert(Authenticated(caller.grants.everything));
            let allowed = caller.grants.everything || is_wildduck_route(request.method(), request.path());
            request.extensions_mut().insert(caller);
            (!allowed).then_some(ApiError::MissingPrivileges)
        }
        Ok(None) => Some(ApiError::InvalidToken),
        Err(error) => Some(error),
    };
    let open = OPEN_PATHS.contains(&request.path()) || super::dashboard::is_open(request.path());
    match refusal {
        Some(error) if !open => {
            let (request, _) = request.into_parts();
            let response = actix_web::ResponseError::error_response(&error);
            Ok(ServiceResponse::new(request, response).map_into_right_body())
        }
        _ => {
            if request.extensions().get::<Authenticated>().is_none() {
                request.extensions_mut().insert(Authenticated(false));
            }
            Ok(next.call(request).await?.map_into_left_body())
        }
    }
}

/// The caller a request's token stands for: None when a token is needed (or given) and it is
/// not a good one.
async fn identify(state: &ApiState, request: &ServiceRequest) -> Result<Option<Caller>, ApiError> {
    let presented = AccessTokens::presented(request.headers(), request.query_string());
    let needed = !state.access.is_empty() || state.wildduck.is_some();
    let Some(token) = presented else {
        return Ok((!needed).then_some(Caller::OPERATOR));
    };
    if state.access.accepts(&token) {
        return Ok(Some(Caller::OPERATOR));
    }
    match &state.wildduck {
        Some(wildduck) => wildduck.caller(&token).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildduck_tokens_reach_wildducks_webhook_routes_only() {
        assert!(is_wildduck_route(&Method::GET, "/webhooks"));
        assert!(is_wildduck_route(&Method::POST, "/webhooks"));
        assert!(is_wildduck_route(&Method::DELETE, "/webhooks/5f1e9d2c8b3a4e0012345678"));
        assert!(!is_wildduck_route(&Method::GET, "/webhooks/5f1e9d2c8b3a4e0012345678"));
        assert!(!is_wildduck_route(
            &Method::DELETE,
            "/webhooks/5f1e9d2c8b3a4e0012345678/dead"
        ));
        assert!(!is_wildduck_route(&Method::DELETE, "/webhooks/"));
        assert!(!is_wildduck_route(&Method::GET, "/webhooksx"));
        assert!(!is_wildduck_route(&Method::DELETE, "/webhooksxy"));
        assert!(!is_wildduck_route(&Method::POST, "/events"));
    }
}

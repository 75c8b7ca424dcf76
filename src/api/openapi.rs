//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' annotations and the
//! request and response types they use. CI fuzzes the running service against it
//! (schemathesis), which keeps it true.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::dashboard::{page, stream, tickets, view};
use super::{controls, event_history, events, health, history, instances, metrics, replays, webhook_list, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookrouter",
        description = "A durable webhook router with WildDuck-compatible webhook management.",
    ),
    paths(
        serve,
        health::service,
        metrics::render,
        instances::list,
        events::publish,
        event_history::list,
        event_history::get,
        webhook_list::list,
        webhooks::create,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        health::webhook,
        controls::pause,
        controls::resume,
        controls::retry,
        controls::secret,
        controls::rotate_secret,
        history::attempts,
        history::dead_letters,
        history::replay,
        history::purge_dead,
        history::rejected,
        replays::replay,
        replays::list,
        replays::get,
        replays::cancel,
        page::page,
        page::asset,
        view::webhooks,
        tickets::ticket,
        stream::stream,
    ),
    modifiers(&AccessTokens),
    security((), ("accessToken" = []), ("bearer" = []), ("accessTokenQuery" = [])),
)]
struct ApiDoc;

/// The three ways to present an access token.
struct AccessTokens;

impl Modify for AccessTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "accessToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Access-Token"))),
        );
        components.add_security_scheme(
            "accessTokenQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("accessToken"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()))
}

/// This document (OpenAPI 3.1), generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}

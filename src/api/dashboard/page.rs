//! `GET /dashboard` and its script modules and style sheet (`/dashboard/assets/{name}`),
//! compiled into the binary: no CDN, no web fonts, nothing fetched from another host, so it
//! works offline and behind any firewall.
//!
//! These are open (they hold no data); the page asks for an access token when the API needs
//! one and shows nothing until it has a valid one. A strict Content-Security-Policy lets the
//! page talk to this service only.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::errors::ApiError;
use crate::api::responses::ErrorBody;

const INDEX: &str = include_str!("static/index.html");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// The page's files: name, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JAVASCRIPT, include_str!("static/app.js")),
    ("api.js", JAVASCRIPT, include_str!("static/api.js")),
    ("format.js", JAVASCRIPT, include_str!("static/format.js")),
    ("table.js", JAVASCRIPT, include_str!("static/table.js")),
    ("detail.js", JAVASCRIPT, include_str!("static/detail.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("static/app.css")),
];

/// Scripts, styles and connections from this origin only; no frames, no plugins.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard (HTML). It holds no data: the data comes from the JSON routes and the stream.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", security(()),
    responses((status = 200, content_type = "text/html", body = String)))]
pub async fn page() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct AssetParams {
    /// One of the page's files: `app.js`, `api.js`, `format.js`, `table.js`, `detail.js`,
    /// `app.css`.
    #[param(pattern = r"^((app|api|format|table|detail)\.js|app\.css)$")]
    name: String,
}

/// One of the dashboard's script modules or its style sheet.
#[utoipa::path(get, path = "/dashboard/assets/{name}", tag = "dashboard", security(()), params(AssetParams),
    responses(
        (status = 200, description = "The file", content((String = "text/javascript"), (String = "text/css"))),
        (status = 404, body = ErrorBody, description = "`RouteNotFound`: no such file")))]
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .iter()
        .find(|(file, ..)| *file == name.as_str())
        .map(|(_, content_type, body)| file(content_type, body))
        .ok_or_else(|| ApiError::RouteNotFound(format!("/dashboard/assets/{name}")))
}

fn file(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // Revalidate, so an upgraded service serves its new page at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

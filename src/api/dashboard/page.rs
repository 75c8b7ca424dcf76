//! `GET /dashboard` and its script and style sheet, compiled into the binary: no CDN, no web
//! fonts, nothing fetched from another host, so it works offline and behind any firewall.
//!
//! These three are open (they hold no data); the page asks for an access token when the API
//! needs one and shows nothing until it has a valid one. A strict Content-Security-Policy
//! lets the page talk to this service only.

use actix_web::http::header;
use actix_web::HttpResponse;

const INDEX: &str = include_str!("static/index.html");
const SCRIPT: &str = include_str!("static/app.js");
const STYLE: &str = include_str!("static/app.css");

/// Scripts, styles and connections from this origin only; no frames, no plugins.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard (HTML). It holds no data: the data comes from the JSON routes and the stream.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", security(()),
    responses((status = 200, content_type = "text/html", body = String)))]
pub async fn page() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

/// The dashboard's script.
#[utoipa::path(get, path = "/dashboard/app.js", tag = "dashboard", security(()),
    responses((status = 200, content_type = "text/javascript", body = String)))]
pub async fn script() -> HttpResponse {
    file("text/javascript; charset=utf-8", SCRIPT)
}

/// The dashboard's style sheet.
#[utoipa::path(get, path = "/dashboard/app.css", tag = "dashboard", security(()),
    responses((status = 200, content_type = "text/css", body = String)))]
pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
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

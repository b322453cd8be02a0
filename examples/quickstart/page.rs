//! The browser app at `/`: one HTML page, its script and its style sheet,
//! compiled into the binary (no build step, no files to find at run
//! time), each with the security headers a page that holds a session
//! should have.

use crate::signin::html_escape;

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    response::IntoResponse,
    routing::get,
};

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// No inline script or style, nothing from elsewhere, no framing, no
/// plugins, no form posting off the page.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The page's routes. `client_id` is the demo browser client's id,
/// written into the page once.
pub(crate) fn routes(client_id: &str) -> Router {
    // Client ids of the demo are checked to be plain tokens (setup.rs), so
    // they need no HTML escaping; escape anyway, in case that changes.
    let index: std::sync::Arc<str> = INDEX
        .replace("{{CLIENT_ID}}", &html_escape(client_id))
        .into();
    Router::new()
        .route(
            "/",
            get(move || {
                let index = index.to_string();
                async move { asset("text/html; charset=utf-8", index) }
            }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> impl IntoResponse {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body)
}

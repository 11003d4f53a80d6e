//! The portal's files: GOV.UK Frontend's compiled CSS, JavaScript, fonts and images from the
//! `govuk-frontend` npm package (installed by the project's scripts, never copied into the
//! repository), and the portal's own scripts and styles, compiled into the binary.

use std::path::Path;

use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;

/// Marks the page as scripted before it is drawn (GOV.UK Frontend's convention).
const JS_ENABLED: &str = include_str!("../../static/js-enabled.js");
/// Starts GOV.UK Frontend's components.
const INIT: &str = include_str!("../../static/init.mjs");
/// The few styles GOV.UK Frontend lacks (the sign-out button in the navigation, the chart).
const CSS: &str = include_str!("../../static/portal.css");

/// GOV.UK Frontend's `dist/govuk` directory, under `/portal/govuk`.
pub fn govuk(dir: &Path) -> ServeDir {
    ServeDir::new(dir)
}

/// `/portal/static/{file}`: the portal's own scripts.
pub async fn own(UrlPath(file): UrlPath<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "js-enabled.js" => (JS_ENABLED, "text/javascript; charset=utf-8"),
        "init.mjs" => (INIT, "text/javascript; charset=utf-8"),
        "portal.css" => (CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

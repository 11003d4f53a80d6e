//! The pages. Each reads through the API ([`super::call`]) as the signed-in person and shows what
//! it answers; a refusal becomes the GOV.UK page for it (sign in again, no access, page not found,
//! a problem with the service).

pub mod check_request;
pub mod estimate;
pub mod form;
pub mod format;
pub mod new_request;
pub mod questions;
pub mod quota;
pub mod requests;
pub mod spend;
pub mod store;
pub mod tenancies;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::call::Refusal;
use super::chrome::{Chrome, render};
use super::session;

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: String,
    message: String,
}

/// A page saying what went wrong, with `status`.
pub fn error_page(status: StatusCode, heading: &str, message: &str) -> Response {
    render(status, &ErrorPage { chrome: Chrome::default(), heading: heading.into(), message: message.into() })
}

/// The same, inside a signed-in person's chrome.
pub fn error_for(chrome: Chrome, status: StatusCode, heading: &str, message: &str) -> Response {
    render(status, &ErrorPage { chrome, heading: heading.into(), message: message.into() })
}

/// The page for an API refusal that is not a form's validation.
pub fn refused(chrome: Chrome, refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match refusal.status {
        // The token stopped being accepted (revoked, or the provider rotated away its key).
        401 => {
            let mut response = Redirect::to("/portal/sign-in").into_response();
            if let Ok(v) = session::clear_cookie(session::SESSION_COOKIE).parse() {
                response.headers_mut().append(http::header::SET_COOKIE, v);
            }
            response
        }
        403 => error_for(
            chrome,
            status,
            "You do not have access to this page",
            "Your account does not give you this. Ask your platform team if you need it.",
        ),
        404 => error_for(
            chrome,
            status,
            "Page not found",
            "If you typed the web address, check it is correct. If you pasted it, check you copied all of it.",
        ),
        409 => {
            error_for(chrome, status, "This has changed", refusal.detail.as_deref().unwrap_or(&refusal.title))
        }
        429 => error_for(
            chrome,
            status,
            "Too many requests",
            "You have made too many requests in a short time. Wait a minute, then try again.",
        ),
        400..=499 => error_for(
            chrome,
            status,
            "There is a problem with your request",
            refusal.detail.as_deref().unwrap_or("Go back and try again."),
        ),
        _ => error_for(
            chrome,
            if status.is_server_error() { status } else { StatusCode::INTERNAL_SERVER_ERROR },
            "Sorry, there is a problem with the service",
            "Try again later.",
        ),
    }
}

/// A form posted without its session's CSRF token (from another site, or a stale page).
pub fn forged_form() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Go back, reload the page and try again. Nothing was changed.",
    )
}

#[derive(Template)]
#[template(path = "portal/start.html")]
struct StartPage {
    chrome: Chrome,
}

/// `GET /portal`: the start page, or the tenancies of a signed-in person.
pub async fn start(headers: http::HeaderMap) -> Response {
    if session::cookie(&headers, session::SESSION_COOKIE).is_some() {
        return Redirect::to("/portal/tenancies").into_response();
    }
    render(StatusCode::OK, &StartPage { chrome: Chrome::default() })
}

/// Anything else under `/portal`.
pub async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "If you typed the web address, check it is correct. If you pasted it, check you copied all of it.",
    )
}

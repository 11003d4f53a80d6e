//! Signing in and out. Sign-in is the authorization code flow with PKCE: `begin` keeps a random
//! `state` and PKCE verifier server-side under a one-use cookie and sends the browser to the
//! provider; `finish` takes that record (once), checks the state, exchanges the code with the
//! verifier on the back channel, has the API check the access token (`/v1/whoami`), and starts a
//! session under a new random key (never one the browser chose). Sign-out is a form with the
//! session's CSRF token: the session is deleted server-side, then the provider's own session is
//! ended.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::Served;
use super::call::{Via, call};
use super::chrome::{Chrome, render};
use super::pages::error_page;
use super::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_MS, Session, SignIn};

/// Where a sign-in returns when it names nowhere (or somewhere outside the portal).
const HOME: &str = "/portal/tenancies";

/// `?next=` of the sign-in link.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// A page to return to after sign-in: a path of the portal, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/portal" || n.starts_with("/portal/") || n.starts_with("/portal?"))
                && !n.starts_with("/portal/sign")
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => HOME.to_owned(),
    }
}

/// `GET /portal/sign-in`.
pub async fn begin(
    State(served): State<Served>,
    parts: http::request::Parts,
    Query(next): Query<Next>,
) -> Response {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    // Each sign-in started is a row until it ends or expires: an address may start a few a
    // second (a proxy's clients share its address), and expired ones are swept as they start.
    let address = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "(unknown)".to_owned(), |c| c.0.ip().to_string());
    if served.portal.sign_ins.take(&address, std::time::Instant::now()).is_err() {
        return error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Too many sign-ins were started from your network in a short time. Wait a minute, then try again.",
        );
    }
    let (Ok(key), Ok(state), Ok(verifier)) =
        (session::random_token(), session::random_token(), session::random_token())
    else {
        return failed("no randomness is available");
    };
    let record =
        SignIn { state: state.clone(), verifier: verifier.clone(), next: safe_next(next.next.as_deref()) };
    let Ok(body) = serde_json::to_string(&record) else { return failed("the sign-in cannot be recorded") };
    let Ok(sealed) = session::seal(&key, &body) else { return failed("the sign-in cannot be sealed") };
    let store = &served.portal.sessions;
    if let Err(e) = store.delete("", now_ms).await {
        return unavailable(&e);
    }
    if let Err(e) = store.put(&session::key_hash(&key), now_ms + SIGN_IN_MS, sealed).await {
        return unavailable(&e);
    }
    let url =
        match served.portal.provider.authorization_url(&state, &session::pkce_challenge(&verifier)).await {
            Ok(url) => url,
            Err(e) => return unavailable(&e.to_string()),
        };
    let mut response = Redirect::to(&url).into_response();
    set_cookie(&mut response, &session::set_cookie(SIGN_IN_COOKIE, &key, SIGN_IN_MS / 1000));
    response
}

/// What the provider sends the browser back with.
#[derive(Debug, Deserialize)]
pub struct Returned {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Who {
    #[serde(default)]
    name: Option<String>,
    user: String,
}

/// `GET /portal/signed-in`.
pub async fn finish(
    State(served): State<Served>,
    headers: HeaderMap,
    Query(back): Query<Returned>,
) -> Response {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let store = &served.portal.sessions;
    let Some(key) = session::cookie(&headers, SIGN_IN_COOKIE) else {
        return start_again("This sign-in was not started here, or took longer than 10 minutes.");
    };
    let key_hash = session::key_hash(&key);
    // One use: a replayed return finds nothing.
    let record = match store.get(&key_hash, now_ms).await {
        Ok(found) => {
            found.and_then(|b| session::open(&key, &b)).and_then(|b| serde_json::from_str::<SignIn>(&b).ok())
        }
        Err(e) => return unavailable(&e),
    };
    if let Err(e) = store.delete(&key_hash, now_ms).await {
        return unavailable(&e);
    }
    let Some(record) = record else {
        return start_again("This sign-in was already used, or took longer than 10 minutes.");
    };
    if let Some(error) = back.error {
        tracing::info!(%error, "the identity provider did not sign the person in");
        return start_again("The sign-in was cancelled or refused.");
    }
    let (Some(code), Some(state)) = (back.code, back.state) else {
        return start_again("The identity provider's answer was incomplete.");
    };
    if !session::same(&state, &record.state) {
        return start_again("The identity provider's answer was not for this sign-in.");
    }
    let tokens = match served.portal.provider.exchange(&code, &record.verifier).await {
        Ok(t) => t,
        Err(super::provider::ProviderError::Refused(reason)) => {
            tracing::info!(%reason, "the identity provider refused a sign-in code");
            return start_again("The identity provider refused the sign-in.");
        }
        Err(e) => return unavailable(&e.to_string()),
    };
    // The API checks the token as it checks any bearer token.
    let via = Via { token: tokens.access_token.clone(), address: None };
    let answer = call(&served.api, &via, http::Method::GET, "/v1/whoami", None, "application/json").await;
    let who: Who = match answer.json() {
        Ok(who) => who,
        Err(refusal) => {
            tracing::info!(status = refusal.status, "the API did not accept a signed-in person's token");
            return start_again("Commons could not accept this account's sign-in.");
        }
    };
    let (Ok(new_key), Ok(csrf)) = (session::random_token(), session::random_token()) else {
        return failed("no randomness is available");
    };
    let ends_ms = now_ms + served.portal.session_ms;
    let session = Session {
        access_token: tokens.access_token,
        access_expires_ms: now_ms + tokens.expires_in.unwrap_or(60) * 1000,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        csrf,
        name: who.name.unwrap_or(who.user),
        ends_ms,
        draft: None,
    };
    let Ok(body) = serde_json::to_string(&session) else { return failed("the session cannot be recorded") };
    let Ok(sealed) = session::seal(&new_key, &body) else { return failed("the session cannot be sealed") };
    if let Err(e) = store.put(&session::key_hash(&new_key), ends_ms, sealed).await {
        return unavailable(&e);
    }
    let mut response = Redirect::to(&record.next).into_response();
    set_cookie(
        &mut response,
        &session::set_cookie(SESSION_COOKIE, &new_key, served.portal.session_ms / 1000),
    );
    set_cookie(&mut response, &session::clear_cookie(SIGN_IN_COOKIE));
    response
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /portal/sign-out`. A session that still stands is ended server-side first (its form
/// must carry its CSRF token); whether or not one stood, the cookie is cleared and the browser
/// sent to the provider to end its own session, so an expired session cannot sign the person
/// straight back in.
pub async fn sign_out(
    State(served): State<Served>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let mut id_token = None;
    if let Some(key) = session::cookie(&headers, SESSION_COOKIE) {
        let key_hash = session::key_hash(&key);
        let stored = match served.portal.sessions.get(&key_hash, now_ms).await {
            Ok(stored) => stored,
            Err(e) => return unavailable(&e),
        };
        let standing = stored
            .and_then(|b| session::open(&key, &b))
            .and_then(|b| serde_json::from_str::<Session>(&b).ok());
        if let Some(standing) = standing {
            if !session::csrf_matches(&standing, &form.csrf) {
                return super::pages::forged_form();
            }
            id_token = standing.id_token;
        }
        if let Err(e) = served.portal.sessions.delete(&key_hash, now_ms).await {
            return unavailable(&e);
        }
    }
    let after =
        format!("{}/portal/signed-out", served.portal.provider.config().public_url.trim_end_matches('/'));
    let target = served
        .portal
        .provider
        .end_session_url(id_token.as_deref(), &after)
        .await
        .unwrap_or_else(|| "/portal/signed-out".to_owned());
    let mut response = Redirect::to(&target).into_response();
    set_cookie(&mut response, &session::clear_cookie(SESSION_COOKIE));
    response
}

#[derive(Template)]
#[template(path = "portal/signed_out.html")]
struct SignedOutPage {
    chrome: Chrome,
}

/// `GET /portal/signed-out`.
pub async fn signed_out() -> Response {
    render(StatusCode::OK, &SignedOutPage { chrome: Chrome::default() })
}

#[derive(Template)]
#[template(path = "portal/sign_in_failed.html")]
struct StartAgainPage {
    chrome: Chrome,
    reason: String,
}

fn start_again(reason: &str) -> Response {
    let mut response = render(
        StatusCode::BAD_REQUEST,
        &StartAgainPage { chrome: Chrome::default(), reason: reason.to_owned() },
    );
    set_cookie(&mut response, &session::clear_cookie(SIGN_IN_COOKIE));
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn unavailable(reason: &str) -> Response {
    tracing::warn!(%reason, "the portal cannot sign anyone in now");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sorry, there is a problem with the service",
        "Signing in is not possible at the moment. Try again later.",
    )
}

fn failed(reason: &str) -> Response {
    tracing::error!(%reason, "the portal failed to sign someone in");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sorry, there is a problem with the service",
        "Signing in failed. Try again later.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_returns_only_to_the_portal() {
        assert_eq!(safe_next(Some("/portal/tenancies/x?y=1")), "/portal/tenancies/x?y=1");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/portal//evil",
            "/portal\\x",
            "/v1/whoami",
            "/portal/sign-out",
            "/portalx",
        ] {
            assert_eq!(safe_next(Some(bad)), HOME, "{bad}");
        }
        assert_eq!(safe_next(None), HOME);
    }
}

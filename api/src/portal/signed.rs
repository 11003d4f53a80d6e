//! The signed-in person of a page: the session the cookie opens, its access token refreshed when
//! it nears its end. A page asked for without a session sends the browser to sign in and back.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::Served;
use super::call::Via;
use super::pages::error_page;
use super::session::{self, SESSION_COOKIE, Session};

/// An access token this close to its end is refreshed first.
const REFRESH_BEFORE_MS: i64 = 30_000;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Their session.
    pub session: Session,
    /// The hash the session is kept under.
    pub key_hash: String,
    /// The cookie's value, which seals and opens the stored session (held in memory only).
    key: String,
    /// How the portal calls the API as them.
    pub via: Via,
}

impl FromRequestParts<Served> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, served: &Served) -> Result<Self, Self::Rejection> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let to_sign_in = || sign_in_first(parts);
        let Some(key) = session::cookie(&parts.headers, SESSION_COOKIE) else { return Err(to_sign_in()) };
        let key_hash = session::key_hash(&key);
        let store = &served.portal.sessions;
        let stored = store.get(&key_hash, now_ms).await.map_err(|e| unavailable(&e))?;
        let opened = stored.and_then(|sealed| session::open(&key, &sealed));
        let Some(mut session) = opened.and_then(|body| serde_json::from_str::<Session>(&body).ok()) else {
            return Err(to_sign_in());
        };
        if session.access_expires_ms - now_ms < REFRESH_BEFORE_MS {
            let Some(refresh) = session.refresh_token.clone() else {
                let _ = store.delete(&key_hash, now_ms).await;
                return Err(to_sign_in());
            };
            match served.portal.provider.refresh(&refresh).await {
                Ok(tokens) => {
                    session.access_token = tokens.access_token;
                    session.access_expires_ms = now_ms + tokens.expires_in.unwrap_or(60) * 1000;
                    session.refresh_token = tokens.refresh_token.or(Some(refresh));
                    if tokens.id_token.is_some() {
                        session.id_token = tokens.id_token;
                    }
                    // Kept only if the session still stands (a sign-out meanwhile wins).
                    if !keep(served, &key, &key_hash, &session).await? {
                        return Err(to_sign_in());
                    }
                }
                Err(super::provider::ProviderError::Refused(reason)) => {
                    tracing::info!(%reason, "a portal session's refresh was refused; signing in again");
                    let _ = store.delete(&key_hash, now_ms).await;
                    return Err(to_sign_in());
                }
                Err(e) => return Err(unavailable(&e.to_string())),
            }
        }
        let address = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
        let via = Via { token: session.access_token.clone(), address };
        Ok(SignedIn { session, key_hash, key, via })
    }
}

/// To sign in, then back to this page (a form's page, for a form posted without a session).
fn sign_in_first(parts: &Parts) -> Response {
    // The router under /portal sees paths without it; the browser's own is the original.
    let uri = parts.extensions.get::<axum::extract::OriginalUri>().map_or(&parts.uri, |o| &o.0);
    let back = if parts.method == http::Method::GET {
        uri.path_and_query().map_or("/portal", |p| p.as_str())
    } else {
        uri.path().rsplit_once('/').map_or("/portal", |(page, _)| page)
    };
    let mut response =
        Redirect::to(&format!("/portal/sign-in?next={}", crate::auth::http::percent(back))).into_response();
    // A stale or unknown cookie is dropped.
    if let Ok(v) = session::clear_cookie(SESSION_COOKIE).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Seals and stores `session` over what `key_hash` holds, if it still holds a session.
async fn keep(served: &Served, key: &str, key_hash: &str, session: &Session) -> Result<bool, Response> {
    let body = serde_json::to_string(session).map_err(|e| unavailable(&e.to_string()))?;
    let sealed = session::seal(key, &body).map_err(|e| unavailable(&e))?;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    served.portal.sessions.update(key_hash, now_ms, sealed).await.map_err(|e| unavailable(&e))
}

impl SignedIn {
    /// Keeps the session as it now stands (its draft, say); a session ended meanwhile (signed out
    /// in another tab) stays ended, and the person is sent to sign in.
    pub async fn save(&self, served: &Served) -> Result<(), Response> {
        if keep(served, &self.key, &self.key_hash, &self.session).await? {
            Ok(())
        } else {
            Err(Redirect::to("/portal/sign-in").into_response())
        }
    }
}

fn unavailable(reason: &str) -> Response {
    tracing::warn!(%reason, "the portal cannot check a session");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sorry, there is a problem with the service",
        "Try again later. Signed-in sessions cannot be checked at the moment.",
    )
}

//! The portal: server-rendered pages in the GOV.UK Design System for councils, platform teams and
//! finance, served by the same process as the API. A person signs in through the API's OpenID
//! Connect provider ([`provider`]); their session is kept server-side ([`session`]); every page
//! reads and every form writes through the `/v1` router itself ([`call`]), so the portal adds no
//! rule of its own. Pages are compiled templates with escaping on ([`pages`]); GOV.UK Frontend's
//! assets come from npm, installed by the project's scripts and served from a directory
//! ([`assets`]).

pub mod assets;
pub mod call;
pub mod chrome;
pub mod draft;
pub mod pages;
pub mod provider;
pub mod session;
pub mod sign_in;
pub mod signed;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use provider::Provider;
use session::SessionStore;

/// What the portal needs from the process.
#[derive(Debug)]
pub struct Portal {
    /// Signs people in.
    pub provider: Provider,
    /// Where sessions are kept.
    pub sessions: Arc<dyn SessionStore>,
    /// GOV.UK Frontend's `dist/govuk` directory (from npm).
    pub assets: PathBuf,
    /// How long a session lasts at most, whatever the provider's tokens say.
    pub session_ms: i64,
    /// Sign-ins started per address.
    pub sign_ins: crate::v1::limits::RateLimiter,
}

/// The portal with the `/v1` router it calls.
#[derive(Debug, Clone)]
pub struct Served {
    /// The portal.
    pub portal: Arc<Portal>,
    /// The guarded `/v1` router.
    pub api: Router,
}

/// The portal's routes, under `/portal` (anything else under it is the portal's own 404 page).
pub fn router(portal: Arc<Portal>, api: Router) -> Router {
    let served = Served { portal: portal.clone(), api };
    let pages = Router::new()
        .route("/", get(pages::start))
        .route("/sign-in", get(sign_in::begin))
        .route("/signed-in", get(sign_in::finish))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/signed-out", get(sign_in::signed_out))
        .route("/tenancies", get(pages::tenancies::list))
        .route("/tenancies/{name}", get(pages::tenancies::show))
        .route("/tenancies/{name}/more-quota", get(pages::quota::ask).post(pages::quota::answer))
        .route("/request-tenancy", get(pages::new_request::begin))
        .route("/request-tenancy/check", get(pages::check_request::show).post(pages::check_request::submit))
        .route("/request-tenancy/sent/{name}", get(pages::check_request::sent))
        .route("/request-tenancy/{step}", get(pages::new_request::ask).post(pages::new_request::answer))
        .route("/applications", get(pages::store::list))
        .route("/applications/{namespace}/{name}", get(pages::store::show))
        .route(
            "/applications/{namespace}/{name}/subscribe",
            get(pages::store::ask).post(pages::store::subscribe),
        )
        .route("/subscriptions", get(pages::store::subscriptions))
        .route("/spend", get(pages::spend::show))
        .route("/spend/download", get(pages::spend::download))
        .route("/spend/chart.svg", get(pages::spend::chart))
        .route("/requests", get(pages::requests::list))
        .route("/requests/{name}", get(pages::requests::show))
        .route("/requests/{name}/decision", post(pages::requests::decide))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(served.clone(), chrome::page_headers))
        .with_state(served);
    let files = Router::new()
        .route("/static/{file}", get(assets::own))
        .nest_service("/govuk", assets::govuk(&portal.assets))
        .layer(axum::middleware::from_fn(chrome::asset_headers));
    Router::new().nest("/portal", pages.merge(files))
}

//! The Commons REST API. This crate is the HTTP layer: who is calling ([`auth`]), what they may do
//! ([`authz`]), and the routes. The process that runs it (the `commons` binary in the operator
//! crate) hands it shared state — readiness, the metrics registry, the stores it reads from and
//! the ledger behind small traits — so nothing here depends on the controllers.

pub mod auth;
pub mod authz;
pub mod health;
pub mod portal;
pub mod problem;
pub mod v1;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use tokio::sync::watch;

pub use health::Readiness;
pub use problem::Problem;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The latest readiness, published by the process's readiness checker.
    pub readiness: watch::Receiver<Readiness>,
    /// The metrics registry `/metrics` renders.
    pub registry: prometheus::Registry,
    /// The `/v1` API, where this process serves it.
    pub v1: Option<Arc<v1::V1>>,
    /// The portal, where this process serves it (it calls the `/v1` API, so it needs it).
    pub portal: Option<Arc<portal::Portal>>,
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let v1 = state.v1.clone().map(v1::router).unwrap_or_default();
    let portal = match (&state.portal, &state.v1) {
        (Some(portal), Some(_)) => portal::router(portal.clone(), v1.clone()),
        _ => Router::new(),
    };
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/readyz/{check}", get(health::readyz_check))
        .route("/metrics", get(health::metrics))
        .with_state(state)
        .merge(v1)
        // The portal's pages answer browsers in HTML; everything else answers errors as problems.
        .layer(axum::middleware::from_fn(problem::every_error_is_a_problem))
        .merge(portal)
        .fallback(not_found)
}

async fn not_found(uri: Uri) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
        .with_detail(format!("no resource at {}", uri.path()))
        .with_instance(uri.path().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(readiness: Readiness) -> (Router, watch::Sender<Readiness>) {
        let (tx, rx) = watch::channel(readiness);
        let registry = prometheus::Registry::new();
        let counter = prometheus::IntCounter::new("commons_test_total", "A test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        (router(AppState { readiness: rx, registry, v1: None, portal: None }), tx)
    }

    async fn call(router: Router, path: &str) -> (StatusCode, String, String) {
        let response = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let (router, _tx) = app(Readiness::default());
        let (status, _, body) = call(router, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "ok");
    }

    #[tokio::test]
    async fn readyz_is_unavailable_until_checked_then_follows_the_checks() {
        let (router, tx) = app(Readiness::default());
        let (status, content_type, body) = call(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type, problem::PROBLEM_JSON);
        assert!(body.contains("not been checked"), "{body}");

        tx.send(Readiness {
            passing: vec!["apiserver".into()],
            failing: vec![health::FailingCheck {
                check: "crds".into(),
                reason: "tenancies.commons.dev is not installed".into(),
            }],
            degraded: vec![],
        })
        .unwrap();
        let (status, _, body) = call(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("crds: tenancies.commons.dev is not installed"), "{body}");

        tx.send(Readiness { passing: vec!["apiserver".into(), "crds".into()], ..Readiness::default() })
            .unwrap();
        let (status, _, body) = call(router, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("\"crds\""), "{body}");
    }

    #[tokio::test]
    async fn a_degraded_check_leaves_the_process_ready_and_answers_for_itself() {
        let (router, tx) = app(Readiness::default());
        tx.send(Readiness {
            passing: vec!["apiserver".into()],
            failing: vec![],
            degraded: vec![health::FailingCheck {
                check: "metering".into(),
                reason: "the ledger is down".into(),
            }],
        })
        .unwrap();
        let (status, _, body) = call(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("the ledger is down"), "{body}");
        let (status, content_type, body) = call(router.clone(), "/readyz/metering").await;
        assert_eq!((status, content_type.as_str()), (StatusCode::SERVICE_UNAVAILABLE, problem::PROBLEM_JSON));
        assert!(body.contains("metering: the ledger is down"), "{body}");
        let (status, _, _) = call(router.clone(), "/readyz/apiserver").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = call(router, "/readyz/nothing").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_render_the_registry() {
        let (router, _tx) = app(Readiness::default());
        let (status, content_type, body) = call(router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(body.contains("commons_test_total 1"), "{body}");
    }

    #[tokio::test]
    async fn unknown_paths_are_problem_json_404s() {
        let (router, _tx) = app(Readiness::default());
        let (status, content_type, body) = call(router, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type, problem::PROBLEM_JSON);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["status"], 404);
        assert_eq!(doc["instance"], "/nowhere");
        assert_eq!(doc["type"], "https://commons.dev/problems/not-found");
    }
}

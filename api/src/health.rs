//! Liveness, readiness and metrics endpoints.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, TextEncoder};
use serde::Serialize;

use crate::AppState;
use crate::problem::Problem;

/// Whether the process can serve: each check by name, and why a failing one fails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The checks that pass.
    pub passing: Vec<String>,
    /// The checks that fail, with the reason.
    pub failing: Vec<FailingCheck>,
    /// Checks that fail without making the process unready (what they cover does not work, but
    /// serving does), with the reason: metering while its ledger cannot be written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<FailingCheck>,
}

/// A readiness check that fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingCheck {
    /// The check's name.
    pub check: String,
    /// Why it fails.
    pub reason: String,
}

impl Readiness {
    /// Ready when at least one check has run and none fails.
    pub fn is_ready(&self) -> bool {
        self.failing.is_empty() && !self.passing.is_empty()
    }
}

/// `GET /healthz`: the process is alive and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 with the passing checks, or 503 problem+json naming the failing ones.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = state.readiness.borrow().clone();
    if readiness.is_ready() {
        (StatusCode::OK, axum::Json(readiness)).into_response()
    } else if readiness.passing.is_empty() && readiness.failing.is_empty() {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready")
            .with_detail("readiness has not been checked yet")
            .with_instance("/readyz")
            .into_response()
    } else {
        let detail = readiness
            .failing
            .iter()
            .map(|f| format!("{}: {}", f.check, f.reason))
            .collect::<Vec<_>>()
            .join("; ");
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready")
            .with_detail(detail)
            .with_instance("/readyz")
            .into_response()
    }
}

/// `GET /readyz/{check}`: 200 while that one check passes; 503 problem+json with the reason while
/// it fails or is degraded (for example `/readyz/metering`); 404 for a check that does not exist.
pub async fn readyz_check(
    State(state): State<AppState>,
    axum::extract::Path(check): axum::extract::Path<String>,
) -> Response {
    let readiness = state.readiness.borrow().clone();
    let instance = format!("/readyz/{check}");
    if readiness.passing.contains(&check) {
        return (StatusCode::OK, axum::Json(serde_json::json!({"check": check, "passing": true})))
            .into_response();
    }
    match readiness.failing.iter().chain(&readiness.degraded).find(|f| f.check == check) {
        Some(f) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready")
            .with_detail(format!("{}: {}", f.check, f.reason))
            .with_instance(instance)
            .into_response(),
        None => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .with_detail(format!("no readiness check named {check:?} has run"))
            .with_instance(instance)
            .into_response(),
    }
}

/// `GET /metrics`: every registered metric in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, encoder.format_type().to_owned())], body).into_response(),
        Err(e) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics-encoding",
            "Metrics could not be encoded",
        )
        .with_detail(e.to_string())
        .with_instance("/metrics")
        .into_response(),
    }
}

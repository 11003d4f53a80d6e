//! `/v1`: the versioned REST API. Every route authenticates the caller ([`crate::auth`]), asks RBAC
//! whether it may take the route's action ([`crate::authz`]), and shows only the organisations the
//! caller acts for unless RBAC grants it every organisation.

pub mod audit;
pub mod catalogue;
pub mod guard;
pub mod limits;
pub mod openapi;
pub mod quota_requests;
pub mod record;
pub mod reports;
pub mod request_view;
mod request_write;
pub mod requests;
pub mod tenancies;
pub mod usage;
pub mod whoami;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use commons_crds::{Tenancy, TenancyRequest};
use futures::future::BoxFuture;
use kube::runtime::reflector::Store;

use crate::auth::{AuthFailure, Authenticator, Identity};
use crate::authz::{ALL_ORGANISATIONS, Action, Authorizer};
use crate::problem::Problem;

/// A tenancy's spend this month, as the meter last measured it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    /// `YYYY-MM`.
    pub period: String,
    /// Spend so far, an exact decimal string.
    pub month_to_date: String,
    /// By the month's end at the current rate (what is held now, held until then).
    pub projected: String,
    /// The currency.
    pub currency: String,
}

/// Where spend figures come from (the meter's budgets, in the `commons` binary).
pub trait SpendSource: Send + Sync + std::fmt::Debug {
    /// The tenancy's figures, if the ledger has any.
    fn of(&self, tenancy: &str) -> Option<Spend>;
}

/// What the auto-approval policy says of a tenancy asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    /// The rule that approves it at once, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Why no rule does: the first condition each rule finds unmet, or what keeps every rule
    /// from deciding.
    pub reasons: Vec<String>,
}

/// A month's estimated cost of holding a quota all month.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// The month priced, `YYYY-MM` (next month).
    pub month: String,
    /// The currency.
    pub currency: String,
    /// The month's total, VAT included, an exact decimal string.
    pub total: String,
    /// Its lines: `{charge, quantity, amount}`.
    pub lines: Vec<EstimateLine>,
}

/// One line of an estimate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EstimateLine {
    /// cpu, memory, storage, load-balancer, overhead, vat.
    pub charge: String,
    /// The quantity and its unit, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<String>,
    /// The amount, an exact decimal string.
    pub amount: String,
}

/// Prices a quota with the metering code that bills (the `commons` binary's forecast).
pub trait Forecaster: Send + Sync + std::fmt::Debug {
    /// Next month's cost of holding all of `quota` all month.
    fn monthly(&self, quota: &commons_crds::tenancy::TenancyQuota)
    -> BoxFuture<'_, Result<Estimate, String>>;

    /// The same for each of `quotas`, in order; `Err` when nothing can be priced at all.
    fn monthly_each(
        &self,
        quotas: Vec<commons_crds::tenancy::TenancyQuota>,
    ) -> BoxFuture<'_, Result<Vec<Result<Estimate, String>>, String>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(quotas.len());
            for q in &quotas {
                out.push(self.monthly(q).await);
            }
            Ok(out)
        })
    }
}

/// What the `/v1` handlers reach.
pub struct V1 {
    /// Checks credentials.
    pub auth: Authenticator,
    /// Decides actions.
    pub authz: Arc<dyn Authorizer>,
    /// Every Tenancy (the operator's shared store).
    pub tenancies: Store<Tenancy>,
    /// Spend per tenancy.
    pub spend: Arc<dyn SpendSource>,
    /// Every TenancyRequest (the operator's shared store).
    pub requests: Store<TenancyRequest>,
    /// Where TenancyRequests are made.
    pub requests_namespace: String,
    /// Prices quotas.
    pub forecaster: Arc<dyn Forecaster>,
    /// What the auto-approval policy says of a tenancy asked for (the controller writes the
    /// decision; a new request's answer waits for it only when a rule approves).
    pub policy: Arc<dyn Fn(&commons_crds::tenancy::TenancySpec) -> PolicyView + Send + Sync>,
    /// Usage from the ledger.
    pub usage: Arc<dyn usage::UsageSource>,
    /// Reports from the ledger.
    pub reports: Arc<dyn reports::ReportSource>,
    /// The applications store and the subscriptions.
    pub catalogue: Arc<dyn catalogue::CatalogueSource>,
    /// The audit record and idempotency keys.
    pub calls: Arc<dyn record::CallStore>,
    /// `commons_api_audit_failures_total`: calls whose audit record could not be written.
    pub audit_failures: prometheus::IntCounter,
    /// Per-caller rate limits.
    pub limits: limits::RateLimiter,
    /// Per-address limits on calls that fail to authenticate.
    pub auth_limits: limits::RateLimiter,
    /// How long a call may take, reading its body included.
    pub deadline: std::time::Duration,
    /// Writes to the cluster (TenancyRequests and their decisions), as Commons.
    pub client: Option<kube::Client>,
    /// `commons_api_authentication_failures_total{reason}`.
    pub auth_failures: prometheus::IntCounterVec,
}

impl std::fmt::Debug for V1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1")
            .field("auth", &self.auth)
            .field("requests_namespace", &self.requests_namespace)
            .finish_non_exhaustive()
    }
}

impl V1 {
    /// The audit failure counter, registered in `registry`.
    pub fn audit_failures(registry: &prometheus::Registry) -> prometheus::Result<prometheus::IntCounter> {
        let counter = prometheus::IntCounter::new(
            "commons_api_audit_failures_total",
            "Calls to /v1 that changed something and could not be added to the audit record",
        )?;
        registry.register(Box::new(counter.clone()))?;
        Ok(counter)
    }

    /// The failure counter, registered in `registry`.
    pub fn auth_failures(registry: &prometheus::Registry) -> prometheus::Result<prometheus::IntCounterVec> {
        let counter = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "commons_api_authentication_failures_total",
                "Requests to /v1 refused as unauthenticated, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(counter.clone()))?;
        Ok(counter)
    }
}

/// The `/v1` routes, and the OpenAPI document generated from them.
pub fn router(v1: Arc<V1>) -> Router {
    let (routes, api) = routes(v1.clone());
    let document = axum::body::Bytes::from(openapi::document(&api));
    routes.route(
        openapi::PATH,
        get(move || {
            let document = document.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document) }
        }),
    )
}

/// The guarded routes, each registered and documented by one `routes!` call.
pub fn routes(v1: Arc<V1>) -> (Router, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::{router::OpenApiRouter, routes};
    let router = OpenApiRouter::<Arc<V1>>::with_openapi(openapi::Base::openapi())
        .routes(routes!(whoami::whoami))
        .routes(routes!(tenancies::list))
        .routes(routes!(tenancies::get))
        .routes(routes!(requests::list, requests::create))
        .routes(routes!(requests::get, requests::withdraw))
        .routes(routes!(quota_requests::create))
        .routes(routes!(requests::approve))
        .routes(routes!(requests::deny))
        .routes(routes!(usage::usage))
        .routes(routes!(reports::annual))
        .routes(routes!(reports::savings))
        .routes(routes!(reports::forecast))
        .routes(routes!(audit::list))
        .routes(routes!(catalogue::browse))
        .routes(routes!(catalogue::subscriptions, catalogue::subscribe));
    guarded(router, v1)
}

/// `router`'s routes behind the guard (authentication, authorisation, limits, idempotency,
/// audit) and the body limit, with the document they make.
fn guarded(
    router: utoipa_axum::router::OpenApiRouter<Arc<V1>>,
    v1: Arc<V1>,
) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = router.split_for_parts();
    let router = router
        // Only routes that exist are guarded: anything else is a plain 404.
        .route_layer(axum::middleware::from_fn_with_state(
            guard::Guarded { v1: v1.clone(), served: Arc::new(guard::served(&api)) },
            guard::guard,
        ))
        // Bodies are small (a tenancy request is a few KiB): anything larger is refused, 413.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(v1);
    (router, api)
}

/// The caller, authenticated; a handler taking it never runs for an unauthenticated request.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl FromRequestParts<Arc<V1>> for Caller {
    type Rejection = AuthFailure;

    async fn from_request_parts(parts: &mut Parts, v1: &Arc<V1>) -> Result<Self, Self::Rejection> {
        // The guard authenticated the call already; this is for a route mounted without it.
        if let Some(identity) = parts.extensions.get::<Identity>() {
            return Ok(Caller(identity.clone()));
        }
        let now_ms = jiff::Timestamp::now().as_millisecond();
        match v1.auth.authenticate(&parts.headers, now_ms).await {
            Ok(identity) => Ok(Caller(identity)),
            Err(failure) => {
                v1.auth_failures.with_label_values(&[failure.label()]).inc();
                Err(failure)
            }
        }
    }
}

/// Which organisations a caller may see for an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every organisation.
    All,
    /// These only.
    Own(Vec<String>),
}

impl Scope {
    /// Whether `organisation` is in scope.
    pub fn covers(&self, organisation: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Own(own) => own.iter().any(|o| o == organisation),
        }
    }
}

/// Refuses unless RBAC lets `who` take `action`; then the organisations it may take it for.
pub async fn authorise(v1: &V1, who: &Identity, action: Action, path: &str) -> Result<Scope, Problem> {
    let allowed = |action| async move {
        v1.authz.allowed(who, action).await.map_err(|e| {
            tracing::warn!(error = %e, "authorisation cannot be decided");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "authorisation-unavailable",
                "Authorisation cannot be decided now",
            )
            .with_detail("the cluster's RBAC cannot be asked; try again shortly")
            .with_instance(path.to_owned())
        })
    };
    if !allowed(action).await? {
        return Err(forbidden(action, path));
    }
    if allowed(ALL_ORGANISATIONS).await? {
        return Ok(Scope::All);
    }
    Ok(Scope::Own(who.organisations.clone()))
}

/// 403 naming the action refused (which reveals nothing the caller does not know: its own request).
pub fn forbidden(action: Action, path: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed")
        .with_detail(format!("you may not {} {}", action.verb, action.resource))
        .with_instance(path.to_owned())
}

/// 422 naming each field refused and why.
pub fn invalid(errors: Vec<crate::problem::FieldError>, path: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", "The request is not valid")
        .with_detail(
            errors.iter().map(|e| format!("{}: {}", e.field, e.detail)).collect::<Vec<_>>().join("; "),
        )
        .with_errors(errors)
        .with_instance(path.to_owned())
}

/// 422 naming one field.
pub fn invalid_field(field: &str, detail: &str, path: &str) -> Problem {
    invalid(vec![crate::problem::FieldError { field: field.to_owned(), detail: detail.to_owned() }], path)
}

/// 503: the cluster did not take or answer a write.
pub fn unavailable(detail: &str, path: &str) -> Problem {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "cluster-unavailable", "The cluster cannot be reached")
        .with_detail(detail.to_owned())
        .with_instance(path.to_owned())
}

/// 404 for what does not exist or is another organisation's business: the same answer for both.
pub fn not_found(what: &str, path: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
        .with_detail(format!("no {what} at {path}"))
        .with_instance(path.to_owned())
}

#[cfg(test)]
mod tests;

//! `GET /v1/tenancies` and `GET /v1/tenancies/{name}`: the caller's organisations' tenancies with
//! their state, quota used against hard, and spend this month with its month-end projection. A
//! tenancy of another organisation is answered exactly as one that does not exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use commons_crds::Tenancy;
use serde::Serialize;

use super::{Caller, Scope, Spend, V1, authorise, not_found};
use crate::authz::Action;
use crate::problem::Problem;

const LIST: Action = Action { verb: "list", resource: "tenancies" };
const GET: Action = Action { verb: "get", resource: "tenancies" };

/// A tenancy as the API shows it.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenancyView {
    /// The Tenancy's name.
    pub name: String,
    /// The organisation's id.
    pub organisation: String,
    /// Its name as people know it.
    pub organisation_name: String,
    /// The sector.
    pub sector: String,
    /// The cost centre.
    pub cost_centre: String,
    /// The classification.
    pub classification: String,
    /// Ready, Pending or Suspended.
    pub state: &'static str,
    /// The Ready condition's message, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The namespaces (full names).
    pub namespaces: Vec<String>,
    /// Quota: hard limits and use across the tenancy.
    pub quota: Quota,
    /// Spend this month, once the meter has measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<Spend>,
    /// For a sandbox, when it expires (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The monthly budget, an exact decimal string in `spend`'s currency, where one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_budget: Option<String>,
}

/// Hard limits and use.
#[derive(Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Quota {
    /// Hard limits.
    pub hard: BTreeMap<String, String>,
    /// Use.
    pub used: BTreeMap<String, String>,
}

/// The list's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenancyList {
    /// The tenancies, by name.
    pub items: Vec<TenancyView>,
}

/// How the API shows `t`.
pub fn view(t: &Tenancy, spend: Option<Spend>) -> TenancyView {
    let status = t.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let state = if t.spec.suspended {
        "Suspended"
    } else if ready.is_some_and(|c| c.status == "True") {
        "Ready"
    } else {
        "Pending"
    };
    let quota = status.quota.map(|q| Quota { hard: q.hard, used: q.used }).unwrap_or_default();
    let name = t.metadata.name.clone().unwrap_or_default();
    TenancyView {
        organisation: t.spec.organisation.id.clone(),
        organisation_name: t.spec.organisation.display_name.clone(),
        sector: serde_json::to_value(t.spec.organisation.sector)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        cost_centre: t.spec.organisation.cost_centre.clone(),
        classification: serde_json::to_value(t.spec.classification)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        state,
        message: ready.filter(|c| c.status != "True").map(|c| c.message.clone()),
        namespaces: t.spec.namespaces.iter().map(|n| format!("{name}-{}", n.name)).collect(),
        quota,
        spend,
        expires_at: t.spec.expires_at.as_ref().map(|e| e.0.to_string()),
        monthly_budget: t.spec.budget.as_ref().map(|b| b.monthly_amount.to_string()),
        name,
    }
}

/// `GET /v1/tenancies`.
#[utoipa::path(
    get,
    path = "/v1/tenancies",
    tag = "tenancies",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's organisations' tenancies", body = TenancyList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs list tenancies", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Authorisation cannot be decided now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Caller(who): Caller,
) -> Result<Json<TenancyList>, Problem> {
    let scope = authorise(&v1, &who, LIST, uri.path()).await?;
    let mut items: Vec<TenancyView> = v1
        .tenancies
        .state()
        .iter()
        .filter(|t| in_scope(&scope, t))
        .map(|t| view(t, v1.spend.of(t.metadata.name.as_deref().unwrap_or_default())))
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(TenancyList { items }))
}

/// `GET /v1/tenancies/{name}`.
#[utoipa::path(
    get,
    path = "/v1/tenancies/{name}",
    tag = "tenancies",
    params(("name" = String, Path, description = "The Tenancy's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenancy", body = TenancyView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs get tenancies", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenancy, or another organisation's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Authorisation cannot be decided now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    Caller(who): Caller,
) -> Result<Json<TenancyView>, Problem> {
    let scope = authorise(&v1, &who, GET, uri.path()).await?;
    let found = v1
        .tenancies
        .state()
        .into_iter()
        .find(|t| t.metadata.name.as_deref() == Some(name.as_str()))
        .filter(|t| in_scope(&scope, t))
        .ok_or_else(|| not_found("tenancy", uri.path()))?;
    Ok(Json(view(&found, v1.spend.of(&name))))
}

fn in_scope(scope: &Scope, t: &Tenancy) -> bool {
    // A tenancy stored without an organisation id is nobody's but the platform's.
    !t.spec.organisation.id.is_empty() && scope.covers(&t.spec.organisation.id) || *scope == Scope::All
}

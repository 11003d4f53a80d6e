//! `GET /v1/audit`: the record of every call that changed (or tried to change) something, for
//! those RBAC lets `list audit` across every organisation (platform admins).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::record::AuditRecord;
use super::{Caller, Scope, V1, authorise, invalid_field};
use crate::authz::Action;
use crate::problem::Problem;

const LIST: Action = Action { verb: "list", resource: "audit" };

/// The query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// Only records after this id (the `next` of the page before).
    after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of the record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Oldest first.
    pub items: Vec<AuditRecord>,
    /// The `after` of the next page; `null` when this one is the last so far.
    pub next: Option<i64>,
}

/// The handler.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(Params),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the audit record, oldest first", body = AuditPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs list audit and list organisations", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The record cannot be read now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    params: Result<Query<Params>, QueryRejection>,
    Caller(who): Caller,
) -> Result<Json<AuditPage>, Problem> {
    let path = uri.path();
    let Query(params) = params.map_err(|e| invalid_field("query", &e.body_text(), path))?;
    if authorise(&v1, &who, LIST, path).await? != Scope::All {
        return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed")
            .with_detail("the audit record spans every organisation: it needs list organisations too")
            .with_instance(path.to_owned()));
    }
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid_field("limit", "from 1 to 1000", path));
    }
    let items = v1.calls.audit_since(params.after.unwrap_or(0), limit).await.map_err(|e| {
        tracing::warn!(error = %e, "the audit record cannot be read");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit-unavailable",
            "The audit record cannot be read now",
        )
        .with_instance(path.to_owned())
    })?;
    let next = (items.len() as i64 == limit).then(|| items.last().map(|r| r.id)).flatten();
    Ok(Json(AuditPage { items, next }))
}

//! `/v1/tenancy-requests`: an organisation asks for a tenancy, with the estimated monthly cost of
//! the quota it asks for; a platform admin approves or denies it with a reason (or the
//! auto-approval policy approves it at once); a pending request can be withdrawn. The body becomes
//! a `TenancyRequest` exactly as sent, so the apiserver validates it with the CRD's own schema and
//! rules, and each refused field is named in the answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use commons_crds::TenancyRequest;
use commons_crds::tenancy_request::{Decision, Outcome};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

pub use super::request_view::{DecisionView, RequestList, RequestView, Requester, view};
use super::request_write as write;
use super::{Caller, Estimate, Scope, V1, authorise, invalid, not_found, unavailable};
use crate::authz::Action;
use crate::problem::{FieldError, Problem};

pub(super) const CREATE: Action = Action { verb: "create", resource: "tenancyrequests" };
const LIST: Action = Action { verb: "list", resource: "tenancyrequests" };
const GET: Action = Action { verb: "get", resource: "tenancyrequests" };
const APPROVE: Action = Action { verb: "approve", resource: "tenancyrequests" };
const DENY: Action = Action { verb: "deny", resource: "tenancyrequests" };
const WITHDRAW: Action = Action { verb: "delete", resource: "tenancyrequests" };

fn in_scope(scope: &Scope, r: &TenancyRequest) -> bool {
    *scope == Scope::All || scope.covers(&r.spec.requester.organisation)
}

fn find(v1: &V1, scope: &Scope, name: &str, path: &str) -> Result<Arc<TenancyRequest>, Problem> {
    v1.requests
        .state()
        .into_iter()
        .find(|r| r.name_any() == name && r.namespace().as_deref() == Some(v1.requests_namespace.as_str()))
        .filter(|r| in_scope(scope, r))
        .ok_or_else(|| not_found("tenancy request", path))
}

pub(super) fn client(v1: &V1, path: &str) -> Result<kube::Client, Problem> {
    v1.client.clone().ok_or_else(|| unavailable("this server does not write to the cluster", path))
}

/// The apiserver's refusal of what was sent, with the fields it names relative to the body.
pub(crate) fn refused(error: kube::Error, path: &str) -> Problem {
    match error {
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
            let causes = status.details.map(|d| d.causes).unwrap_or_default();
            let mut errors: Vec<FieldError> = causes
                .into_iter()
                .map(|c| FieldError {
                    // Paths and messages relative to the body sent (the apiserver sees `spec`).
                    field: match c.field.as_str() {
                        "<nil>" => String::new(),
                        f => f.strip_prefix("spec.").unwrap_or(f).to_owned(),
                    },
                    detail: if c.message.is_empty() { c.reason } else { c.message.replace("spec.", "") },
                })
                .collect();
            if errors.is_empty() {
                errors.push(FieldError { field: String::new(), detail: status.message });
            }
            invalid(errors, path)
        }
        kube::Error::Api(status) if status.code == 409 => conflict(&status.message, path),
        other => {
            tracing::warn!(error = %other, "the cluster refused a write");
            unavailable(
                "the cluster did not answer whether it took the request: look at GET /v1/tenancy-requests before asking again with a new Idempotency-Key",
                path,
            )
        }
    }
}

pub(super) fn conflict(detail: &str, path: &str) -> Problem {
    Problem::new(StatusCode::CONFLICT, "conflict", "The request changed meanwhile or is already decided")
        .with_detail(detail.to_owned())
        .with_instance(path.to_owned())
}

/// `GET /v1/tenancy-requests`.
#[utoipa::path(
    get,
    path = "/v1/tenancy-requests",
    tag = "tenancy requests",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's organisations' requests, oldest first", body = RequestList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs list tenancyrequests", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Authorisation cannot be decided now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Caller(who): Caller,
) -> Result<Json<RequestList>, Problem> {
    let scope = authorise(&v1, &who, LIST, uri.path()).await?;
    let mut found: Vec<Arc<TenancyRequest>> = v1
        .requests
        .state()
        .into_iter()
        .filter(|r| r.namespace().as_deref() == Some(v1.requests_namespace.as_str()) && in_scope(&scope, r))
        .collect();
    found.sort_by(|a, b| {
        (a.metadata.creation_timestamp.as_ref().map(|t| t.0), a.name_any())
            .cmp(&(b.metadata.creation_timestamp.as_ref().map(|t| t.0), b.name_any()))
    });
    Ok(Json(RequestList { items: found.iter().map(|r| view(r, None)).collect() }))
}

/// `GET /v1/tenancy-requests/{name}`, with the estimated monthly cost.
#[utoipa::path(
    get,
    path = "/v1/tenancy-requests/{name}",
    tag = "tenancy requests",
    params(("name" = String, Path, description = "The request's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request, with its estimated monthly cost", body = RequestView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs get tenancyrequests", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request, or another organisation's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Authorisation cannot be decided now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    Caller(who): Caller,
) -> Result<Json<RequestView>, Problem> {
    let scope = authorise(&v1, &who, GET, uri.path()).await?;
    let r = find(&v1, &scope, &name, uri.path())?;
    let estimate = match quota_asked(&v1, &r) {
        Some(quota) => estimate(&v1, &quota).await,
        None => None,
    };
    let mut shown = view(&r, estimate);
    // A pending request for a new tenancy: what the policy says of it, for the person deciding.
    if shown.decision.is_none() {
        shown.policy = r.spec.tenancy.as_ref().map(|t| (v1.policy)(t));
    }
    Ok(Json(shown))
}

/// The quota a request asks for: a new tenancy's, or the tenancy's whole quota once changed.
fn quota_asked(v1: &V1, r: &TenancyRequest) -> Option<commons_crds::tenancy::TenancyQuota> {
    match &r.spec.tenancy {
        Some(t) => Some(t.quota.clone().unwrap_or_default()),
        None => {
            let current = v1.tenancies.get(&kube::runtime::reflector::ObjectRef::new(&r.spec.tenancy_name));
            r.spec.quota_after(current.and_then(|t| t.spec.quota.clone()).as_ref())
        }
    }
}

pub(super) async fn estimate(v1: &V1, quota: &commons_crds::tenancy::TenancyQuota) -> Option<Estimate> {
    match v1.forecaster.monthly(quota).await {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::info!(error = %e, "no estimate for a tenancy request");
            None
        }
    }
}

/// A request for a tenancy, as `POST /v1/tenancy-requests` takes it. `tenancy` is a Tenancy's
/// `spec`, with the CRD's own schema (the document served carries it whole).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTenancyRequest {
    /// The name the Tenancy is to have (a DNS label of at most 40 characters).
    #[schema(min_length = 1, max_length = 40, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    pub tenancy_name: String,
    /// The Tenancy asked for: a Tenancy's `spec`.
    #[schema(value_type = Object)]
    pub tenancy: Value,
    /// Why the organisation needs it (10 to 4096 characters).
    #[schema(min_length = 10, max_length = 4096)]
    pub justification: String,
}

/// A decision's body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (1 to 4096 characters, not only spaces).
    #[schema(min_length = 1, max_length = 4096, pattern = "\\S")]
    pub reason: String,
}

/// `?dryRun=All`: check and price a request, making nothing (as Kubernetes' own `dryRun`).
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
pub enum DryRun {
    /// Every stage of the write but the last.
    All,
}

/// Whether the query asks for a dry run; any value but `All` is refused, naming the parameter.
pub fn dry_run(query: Option<&str>, path: &str) -> Result<bool, Problem> {
    let mut asked = false;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "dryRun" {
            if value != "All" {
                return Err(super::invalid_field("dryRun", "the only dry run is All", path));
            }
            asked = true;
        }
    }
    Ok(asked)
}

/// The body's members, each checked to be what the request needs before anything is written.
const MEMBERS: [&str; 3] = ["tenancyName", "tenancy", "justification"];

/// `POST /v1/tenancy-requests`.
#[utoipa::path(
    post,
    path = "/v1/tenancy-requests",
    tag = "tenancy requests",
    request_body(content = NewTenancyRequest, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Retries of this call with the same key get its first answer"),
        ("dryRun" = Option<DryRun>, Query, description = "`All`: check the request exactly as a real one (the CRD's schema and rules, the organisation) and price it, making nothing"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made, with its estimated monthly cost (and the policy's decision, if a rule approved it)", body = RequestView,
         headers(("Location" = String, description = "The request's path"))),
        (status = 200, description = "dryRun=All: the request would be made; with its estimated monthly cost. Nothing was made", body = RequestView),
        (status = 400, description = "The body is not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs create tenancyrequests, and to act for the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A call with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the CRD's schema and rules, each field named; or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Caller(who): Caller,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<RequestView>), Problem> {
    let path = uri.path();
    let dry_run = dry_run(uri.query(), path)?;
    let scope = authorise(&v1, &who, CREATE, path).await?;
    let body = write::members(&body, &MEMBERS, &[("tenancy", "required: the Tenancy's spec")], path)?;
    let organisation = body.pointer("/tenancy/organisation/id").and_then(Value::as_str).unwrap_or_default();
    if !organisation.is_empty() && !scope.covers(organisation) {
        return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed")
            .with_detail(format!("you do not act for the organisation {organisation}"))
            .with_instance(path.to_owned()));
    }
    let tenancy_name = body.get("tenancyName").and_then(Value::as_str).unwrap_or_default();
    let contact =
        body.pointer("/tenancy/organisation/contactEmail").and_then(Value::as_str).unwrap_or_default();
    let object = write::object(
        &v1,
        &who,
        (write::Name::Generated(&write::generate_name(tenancy_name)), organisation, contact),
        json!({
            "tenancyName": body.get("tenancyName"),
            "tenancy": body.get("tenancy"),
            "justification": body.get("justification"),
        }),
    );
    let made = write::create(&v1, object, dry_run, path).await?;
    if dry_run {
        let estimate = match quota_asked(&v1, &made) {
            Some(quota) => estimate(&v1, &quota).await,
            None => None,
        };
        return Ok((StatusCode::OK, HeaderMap::new(), Json(view(&made, estimate))));
    }
    // The auto-approval policy decides at once when a rule approves: then wait a moment for it.
    let at_once = made.spec.tenancy.as_ref().is_some_and(|t| (v1.policy)(t).approved_by.is_some());
    let estimate = match quota_asked(&v1, &made) {
        Some(quota) => estimate(&v1, &quota).await,
        None => None,
    };
    Ok(write::answer(&v1, made, at_once, estimate).await)
}

/// `POST /v1/tenancy-requests/{name}/approve`, body `{"reason": "..."}`.
#[utoipa::path(
    post,
    path = "/v1/tenancy-requests/{name}/approve",
    tag = "tenancy requests",
    params(
        ("name" = String, Path, description = "The request's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries of this call with the same key get its first answer"),
    ),
    request_body(content = DecisionBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Approved; the decision is final", body = RequestView),
        (status = 400, description = "A bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs approve tenancyrequests", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request, or another organisation's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason given, or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn approve(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    Caller(who): Caller,
    body: Bytes,
) -> Result<Json<RequestView>, Problem> {
    decide(&v1, &who, &name, uri.path(), &body, Outcome::Approved).await
}

/// `POST /v1/tenancy-requests/{name}/deny`, body `{"reason": "..."}`.
#[utoipa::path(
    post,
    path = "/v1/tenancy-requests/{name}/deny",
    tag = "tenancy requests",
    params(
        ("name" = String, Path, description = "The request's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries of this call with the same key get its first answer"),
    ),
    request_body(content = DecisionBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Denied; the decision is final", body = RequestView),
        (status = 400, description = "A bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs deny tenancyrequests", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request, or another organisation's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason given, or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn deny(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    Caller(who): Caller,
    body: Bytes,
) -> Result<Json<RequestView>, Problem> {
    decide(&v1, &who, &name, uri.path(), &body, Outcome::Denied).await
}

async fn decide(
    v1: &V1,
    who: &crate::auth::Identity,
    name: &str,
    path: &str,
    body: &[u8],
    outcome: Outcome,
) -> Result<Json<RequestView>, Problem> {
    let action = if outcome == Outcome::Approved { APPROVE } else { DENY };
    let scope = authorise(v1, who, action, path).await?;
    let r = find(v1, &scope, name, path)?;
    let detail = "a decision needs a reason of 1 to 4096 characters, sent as {\"reason\": \"...\"}";
    let reason = match serde_json::from_slice::<DecisionBody>(body) {
        Ok(b) if !b.reason.trim().is_empty() && b.reason.len() <= 4096 => b.reason.trim().to_owned(),
        Ok(_) => {
            return Err(invalid(vec![FieldError { field: "reason".into(), detail: detail.into() }], path));
        }
        Err(e) => {
            let text = e.to_string();
            // serde names an unknown member `like this`.
            let field = match text.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                Some(unknown) => unknown.to_owned(),
                None => "reason".to_owned(),
            };
            let detail = if field == "reason" {
                detail.to_owned()
            } else {
                "unknown field; expected reason".to_owned()
            };
            return Err(invalid(vec![FieldError { field, detail }], path));
        }
    };
    if let Some(d) = r.status.as_ref().and_then(|s| s.decision.as_ref()) {
        return Err(conflict(
            &format!("already {:?} by {}: decisions are final", d.outcome, d.decided_by),
            path,
        ));
    }
    let decision =
        Decision { outcome, decided_by: who.user.clone(), decided_at: Time(jiff::Timestamp::now()), reason };
    let type_ = if outcome == Outcome::Approved { "Approved" } else { "Denied" };
    let condition = Condition {
        type_: type_.into(),
        status: "True".into(),
        reason: type_.into(),
        message: format!("{type_} by {}: {}", decision.decided_by, decision.reason),
        observed_generation: r.metadata.generation,
        last_transition_time: decision.decided_at.clone(),
    };
    // Only onto the version read: a concurrent decision makes this one a conflict (and the CRD
    // refuses any change to a decision). The controller's own status write (it marks a new
    // request as awaiting a decision) is no decision: the request is read again and decided.
    let api: Api<TenancyRequest> = Api::namespaced(client(v1, path)?, &v1.requests_namespace);
    let mut version = r.resource_version();
    let mut attempts = 0;
    let decided = loop {
        let patch = json!({
            "metadata": {"resourceVersion": version},
            "status": {"decision": decision, "conditions": [condition]},
        });
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(decided) => break decided,
            Err(kube::Error::Api(s)) if s.code == 409 && attempts < 3 => {
                attempts += 1;
                version = undecided_version(&api, name, path).await?;
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 422 => {
                return Err(conflict(
                    "the request was decided or changed meanwhile; decisions are final",
                    path,
                ));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(not_found("tenancy request", path)),
            Err(other) => return Err(refused(other, path)),
        }
    };
    tracing::info!(request = name, by = %who.user, outcome = ?outcome, "tenancy request decided");
    Ok(Json(view(&decided, None)))
}

/// The request's version as it is now, if it is still undecided; `409` if it was decided meanwhile.
async fn undecided_version(
    api: &Api<TenancyRequest>,
    name: &str,
    path: &str,
) -> Result<Option<String>, Problem> {
    let fresh = api.get_status(name).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => not_found("tenancy request", path),
        other => refused(other, path),
    })?;
    match fresh.status.as_ref().and_then(|s| s.decision.as_ref()) {
        Some(d) => {
            Err(conflict(&format!("already {:?} by {}: decisions are final", d.outcome, d.decided_by), path))
        }
        None => Ok(fresh.resource_version()),
    }
}

/// `DELETE /v1/tenancy-requests/{name}`: withdraws a pending request; decided ones are kept.
#[utoipa::path(
    delete,
    path = "/v1/tenancy-requests/{name}",
    tag = "tenancy requests",
    params(
        ("name" = String, Path, description = "The request's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries of this call with the same key get its first answer"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 400, description = "A bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs delete tenancyrequests", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request, or another organisation's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided (kept as the record of the decision), or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A reused Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn withdraw(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    Caller(who): Caller,
) -> Result<StatusCode, Problem> {
    let path = uri.path();
    let scope = authorise(&v1, &who, WITHDRAW, path).await?;
    let r = find(&v1, &scope, &name, path)?;
    if let Some(d) = r.status.as_ref().and_then(|s| s.decision.as_ref()) {
        return Err(conflict(
            &format!(
                "already {:?} by {}: a decided request is kept as the record of the decision",
                d.outcome, d.decided_by
            ),
            path,
        ));
    }
    let api: Api<TenancyRequest> = Api::namespaced(client(&v1, path)?, &v1.requests_namespace);
    // Only the version read, and undecided: the controller's own status write is read past.
    let mut version = r.resource_version();
    for attempt in 0.. {
        let params = DeleteParams {
            preconditions: Some(Preconditions { uid: r.uid(), resource_version: version.clone() }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 3 => {
                version = undecided_version(&api, &name, path).await?;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Err(conflict("the request changed meanwhile (decided?); read it again", path));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(not_found("tenancy request", path)),
            Err(other) => return Err(refused(other, path)),
        }
    }
    tracing::info!(request = name, by = %who.user, "tenancy request withdrawn");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod dry_run_tests {
    use super::dry_run;

    #[test]
    fn only_all_is_a_dry_run_and_anything_else_is_named() {
        assert!(!dry_run(None, "/p").unwrap());
        assert!(!dry_run(Some("other=1"), "/p").unwrap());
        assert!(dry_run(Some("dryRun=All"), "/p").unwrap());
        let refused = dry_run(Some("x=1&dryRun=all"), "/p").unwrap_err();
        assert_eq!(refused.status, 422);
        assert_eq!(refused.errors[0].field, "dryRun");
    }
}

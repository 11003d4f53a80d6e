//! `POST /v1/tenancies/{name}/quota-requests`: an organisation asks for new limits on one of its
//! tenancies. The request is a TenancyRequest with `spec.quota`, decided through the same path as
//! a request for a new tenancy (the auto-approval policy, or a platform admin at
//! `/v1/tenancy-requests/{name}/approve` or `/deny`), validated by the apiserver with the CRD's
//! own schema, and answered with the estimated monthly cost of the tenancy's quota once changed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use commons_crds::TenancyRequest;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::requests::{
    CREATE, RequestView, client, conflict, estimate, organisation_label, refused, view, wait_for_decision,
};
use super::{Caller, V1, authorise, invalid, not_found, unavailable};
use crate::problem::{FieldError, Problem};

/// A request for new limits, as `POST /v1/tenancies/{name}/quota-requests` takes it.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewQuotaRequest {
    /// The limits asked for, as in a Tenancy's `spec.quota` (`cpu`, `memory`, `storage`, `pods`,
    /// `loadBalancers`); each one given replaces the tenancy's own, the rest stay.
    #[schema(value_type = Object)]
    pub quota: Value,
    /// Why the organisation needs it (10 to 4096 characters).
    #[schema(min_length = 10, max_length = 4096)]
    pub justification: String,
}

const MEMBERS: [&str; 2] = ["quota", "justification"];

/// `POST /v1/tenancies/{name}/quota-requests`.
#[utoipa::path(
    post,
    path = "/v1/tenancies/{name}/quota-requests",
    tag = "tenancy requests",
    params(
        ("name" = String, Path, description = "The tenancy's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries of this call with the same key get its first answer"),
    ),
    request_body(content = NewQuotaRequest, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made, with the estimated monthly cost of the tenancy's quota once changed (and the policy's decision, if a rule approved it)", body = RequestView,
         headers(("Location" = String, description = "The request's path, under /v1/tenancy-requests"))),
        (status = 400, description = "The body is not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs create tenancyrequests", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenancy, or another organisation's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A quota change for this tenancy is pending already, or a call with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the CRD's schema and rules, each field named; or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    Caller(who): Caller,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<RequestView>), Problem> {
    let path = uri.path();
    let scope = authorise(&v1, &who, CREATE, path).await?;
    let tenancy = v1
        .tenancies
        .get(&ObjectRef::new(&name))
        .filter(|t| !t.spec.organisation.id.is_empty() && scope.covers(&t.spec.organisation.id))
        .ok_or_else(|| not_found("tenancy", path))?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-json", "The body is not JSON")
            .with_detail(e.to_string())
            .with_instance(path.to_owned())
    })?;
    let Value::Object(members) = &body else {
        return Err(invalid(
            vec![FieldError { field: String::new(), detail: "must be a JSON object".into() }],
            path,
        ));
    };
    let mut wrong: Vec<FieldError> = members
        .keys()
        .filter(|k| !MEMBERS.contains(&k.as_str()))
        .map(|k| FieldError {
            field: k.clone(),
            detail: format!("unknown field; expected {}", MEMBERS.join(", ")),
        })
        .collect();
    for required in MEMBERS {
        if !members.contains_key(required) {
            wrong.push(FieldError { field: required.into(), detail: "required".into() });
        }
    }
    if !wrong.is_empty() {
        return Err(invalid(wrong, path));
    }
    let organisation = tenancy.spec.organisation.id.clone();
    let object = json!({
        "apiVersion": "commons.dev/v1alpha1",
        "kind": "TenancyRequest",
        "metadata": {
            "generateName": format!("{name}-quota-"),
            "namespace": v1.requests_namespace,
            "annotations": {"commons.dev/requested-by": who.user},
            "labels": organisation_label(&organisation),
        },
        "spec": {
            "requester": {
                "organisation": organisation,
                "name": who.display_name.clone().unwrap_or_else(|| who.user.clone()),
                "email": who.email.clone().unwrap_or_else(|| tenancy.spec.organisation.contact_email.clone()),
            },
            "tenancyName": name,
            "quota": body.get("quota"),
            "justification": body.get("justification"),
        },
    });
    let object: DynamicObject = serde_json::from_value(object)
        .map_err(|e| invalid(vec![FieldError { field: String::new(), detail: e.to_string() }], path))?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client(&v1, path)?,
        &v1.requests_namespace,
        &ApiResource::erase::<TenancyRequest>(&()),
    );
    // Refused fields are named first (the apiserver checks without writing), whatever else is
    // pending.
    let check = PostParams { dry_run: true, ..PostParams::default() };
    api.create(&check, &object).await.map_err(|e| refused(e, path))?;
    // One change at a time per tenancy: each is judged against the quota the tenancy holds.
    let pending = v1.requests.state().into_iter().find(|r| {
        r.namespace().as_deref() == Some(v1.requests_namespace.as_str())
            && r.spec.quota.is_some()
            && r.spec.tenancy_name == name
            && r.status.as_ref().is_none_or(|s| s.decision.is_none())
    });
    if let Some(p) = pending {
        return Err(conflict(
            &format!(
                "the quota change {} for this tenancy is pending: withdraw it, or wait for its decision",
                p.name_any()
            ),
            path,
        ));
    }
    let made = api.create(&PostParams::default(), &object).await.map_err(|e| refused(e, path))?;
    let made: TenancyRequest = serde_json::to_value(made)
        .and_then(serde_json::from_value)
        .map_err(|_| unavailable("the cluster answered with an object Commons cannot read", path))?;
    let request = made.name_any();
    let after = made.spec.quota_after(tenancy.spec.quota.as_ref());
    let mut spec_after = tenancy.spec.clone();
    spec_after.quota = after.clone();
    let decided = if (v1.approves_at_once)(&spec_after) {
        wait_for_decision(&v1, &request).await.unwrap_or_else(|| Arc::new(made.clone()))
    } else {
        Arc::new(made.clone())
    };
    let estimate = match &after {
        Some(q) => estimate(&v1, q).await,
        None => None,
    };
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/tenancy-requests/{request}")) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(view(&decided, estimate))))
}

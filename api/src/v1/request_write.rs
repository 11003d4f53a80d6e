//! Writing a TenancyRequest for a caller, shared by the request for a new tenancy and the quota
//! change: the body's members checked, the object made with the requester filled in from the
//! credential, written as Commons (the apiserver validates it with the CRD's schema and rules),
//! and the `201` answer, after the auto-approval policy's decision when a rule approves it.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use commons_crds::TenancyRequest;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::requests::{RequestView, client, refused, view};
use super::{Estimate, V1, invalid, unavailable};
use crate::auth::Identity;
use crate::problem::{FieldError, Problem};

/// How long a new request's answer waits for the auto-approval policy's decision.
const POLICY_WAIT: Duration = Duration::from_secs(3);

/// The body: a JSON object with only `allowed` members and each of `required` (with why).
pub(super) fn members(
    body: &[u8],
    allowed: &[&str],
    required: &[(&str, &str)],
    path: &str,
) -> Result<Value, Problem> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
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
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| FieldError {
            field: k.clone(),
            detail: format!("unknown field; expected {}", allowed.join(", ")),
        })
        .collect();
    if wrong.is_empty() {
        wrong.extend(
            required
                .iter()
                .filter(|(m, _)| !members.contains_key(*m))
                .map(|(m, why)| FieldError { field: (*m).to_owned(), detail: (*why).to_owned() }),
        );
    }
    if wrong.is_empty() { Ok(body) } else { Err(invalid(wrong, path)) }
}

/// How a new TenancyRequest is named.
pub(super) enum Name<'a> {
    /// By the apiserver, from this prefix.
    Generated(&'a str),
    /// Exactly so: a second request of the name is refused (409).
    Exactly(&'a str),
}

/// A TenancyRequest named as `name` says, for `organisation`, asked by `who` (its name and
/// verified email; else `contact`), with the rest of its spec from `spec`.
pub(super) fn object(
    v1: &V1,
    who: &Identity,
    (name, organisation, contact): (Name<'_>, &str, &str),
    spec: Value,
) -> Value {
    let mut spec = spec;
    spec["requester"] = json!({
        "organisation": organisation,
        "name": who.display_name.clone().unwrap_or_else(|| who.user.clone()),
        "email": who.email.clone().unwrap_or_else(|| contact.to_owned()),
    });
    let (naming, name) = match name {
        Name::Generated(prefix) => ("generateName", prefix),
        Name::Exactly(name) => ("name", name),
    };
    json!({
        "apiVersion": "commons.dev/v1alpha1",
        "kind": "TenancyRequest",
        "metadata": {
            naming: name,
            "namespace": v1.requests_namespace,
            "annotations": {"commons.dev/requested-by": who.user},
            "labels": organisation_label(organisation),
        },
        "spec": spec,
    })
}

/// Writes `object` as Commons (with `dry_run`, only has it checked), refusals naming each field.
pub(super) async fn create(
    v1: &V1,
    object: Value,
    dry_run: bool,
    path: &str,
) -> Result<TenancyRequest, Problem> {
    let object: DynamicObject = serde_json::from_value(object)
        .map_err(|e| invalid(vec![FieldError { field: String::new(), detail: e.to_string() }], path))?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client(v1, path)?,
        &v1.requests_namespace,
        &ApiResource::erase::<TenancyRequest>(&()),
    );
    let params = PostParams { dry_run, ..PostParams::default() };
    let made = api.create(&params, &object).await.map_err(|e| refused(e, path))?;
    serde_json::to_value(made)
        .and_then(serde_json::from_value)
        .map_err(|_| unavailable("the cluster answered with an object Commons cannot read", path))
}

/// `201` with the request's path, and the request (decided, if `at_once` a rule approves it and
/// the controller has written that within a moment).
pub(super) async fn answer(
    v1: &V1,
    made: TenancyRequest,
    at_once: bool,
    estimate: Option<Estimate>,
) -> (StatusCode, HeaderMap, Json<RequestView>) {
    let name = made.name_any();
    let decided = if at_once {
        wait_for_decision(v1, &name).await.unwrap_or_else(|| Arc::new(made))
    } else {
        Arc::new(made)
    };
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/tenancy-requests/{name}")) {
        headers.insert(header::LOCATION, location);
    }
    (StatusCode::CREATED, headers, Json(view(&decided, estimate)))
}

/// `commons.dev/organisation: <id>` when the id can be a label value (the CRD refuses the
/// request otherwise, naming the field), so requests can be selected by organisation.
pub(super) fn organisation_label(organisation: &str) -> Value {
    let ok = !organisation.is_empty()
        && organisation.len() <= 63
        && organisation.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !organisation.starts_with('-')
        && !organisation.ends_with('-');
    if ok { json!({"commons.dev/organisation": organisation}) } else { json!({}) }
}

/// `<tenancyName>-` when it is a DNS label short enough, else `request-`.
pub(super) fn generate_name(tenancy_name: &str) -> String {
    let label = !tenancy_name.is_empty()
        && tenancy_name.len() <= 40
        && tenancy_name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !tenancy_name.starts_with('-');
    if label { format!("{tenancy_name}-") } else { "request-".to_owned() }
}

async fn wait_for_decision(v1: &V1, name: &str) -> Option<Arc<TenancyRequest>> {
    let deadline = tokio::time::Instant::now() + POLICY_WAIT;
    loop {
        let found = v1.requests.state().into_iter().find(|r| {
            r.name_any() == name && r.namespace().as_deref() == Some(v1.requests_namespace.as_str())
        });
        if found.as_ref().is_some_and(|r| r.status.as_ref().is_some_and(|s| s.decision.is_some())) {
            return found;
        }
        if tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

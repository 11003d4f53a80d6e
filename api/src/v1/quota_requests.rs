//! `POST /v1/tenancies/{name}/quota-requests`: an organisation asks for new limits on one of its
//! tenancies. The request is a TenancyRequest with `spec.quota`, decided through the same path as
//! a request for a new tenancy (the auto-approval policy, or a platform admin at
//! `/v1/tenancy-requests/{name}/approve` or `/deny`), validated by the apiserver with the CRD's
//! own schema, and answered with the estimated monthly cost of the tenancy's quota once changed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use commons_crds::{Tenancy, TenancyRequest};
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};

use super::request_write as write;
use super::requests::{CREATE, RequestView, conflict, estimate};
use super::{Caller, V1, authorise, not_found};
use crate::problem::Problem;

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
    let body =
        write::members(&body, &MEMBERS, &[("quota", "required"), ("justification", "required")], path)?;
    let organisation = tenancy.spec.organisation.id.clone();
    // Numbered, not generated: two changes asked at once (on two replicas, or before the store
    // shows the first) take the same number, and the apiserver makes only one of them.
    let numbered =
        format!("{name}-quota-{}", next_change(&v1.requests.state(), &v1.requests_namespace, &tenancy));
    let object = write::object(
        &v1,
        &who,
        (write::Name::Exactly(&numbered), &organisation, &tenancy.spec.organisation.contact_email),
        json!({"tenancyName": name, "quota": body.get("quota"), "justification": body.get("justification")}),
    );
    // Refused fields are named first (the apiserver checks without writing), whatever else is
    // pending.
    write::create(&v1, object.clone(), true, path).await?;
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
    let made = write::create(&v1, object, false, path).await.map_err(|refused| {
        if refused.status == StatusCode::CONFLICT.as_u16() {
            conflict(
                &format!("the quota change {numbered} for this tenancy was asked for meanwhile: withdraw it, or wait for its decision"),
                path,
            )
        } else {
            refused
        }
    })?;
    let after = made.spec.quota_after(tenancy.spec.quota.as_ref());
    let mut spec_after = tenancy.spec.clone();
    spec_after.quota = after.clone();
    let estimate = match &after {
        Some(q) => estimate(&v1, q).await,
        None => None,
    };
    Ok(write::answer(&v1, made, (v1.policy)(&spec_after).approved_by.is_some(), estimate).await)
}

/// The number of the tenancy's next quota change: one more than the highest of the requests
/// `<tenancy>-quota-<n>` the store holds and of the one its quota last took (named on the
/// Tenancy, and so never reused even if that request is deleted); 1 for the first.
fn next_change(requests: &[Arc<TenancyRequest>], namespace: &str, tenancy: &Tenancy) -> u64 {
    let name = tenancy.name_any();
    let prefix = format!("{name}-quota-");
    let number = |request: &str| request.strip_prefix(&prefix).and_then(|n| n.parse::<u64>().ok());
    let applied = tenancy
        .annotations()
        .get(commons_crds::labels::QUOTA_CHANGE_REQUEST)
        .and_then(|key| key.rsplit('/').next())
        .and_then(number);
    requests
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(namespace))
        .filter_map(|r| number(&r.name_any()))
        .chain(applied)
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(namespace: &str, name: &str) -> Arc<TenancyRequest> {
        let mut r: TenancyRequest = serde_json::from_value(json!({
            "apiVersion": "commons.dev/v1alpha1", "kind": "TenancyRequest",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"tenancyName": "a", "justification": "a test of numbering",
                     "requester": {"organisation": "north", "name": "Nora", "email": "nora@north.example"}}
        }))
        .unwrap();
        r.metadata.namespace = Some(namespace.into());
        Arc::new(r)
    }

    fn tenancy(name: &str, applied: Option<&str>) -> Tenancy {
        let mut t: Tenancy = serde_json::from_value(json!({
            "apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": name},
            "spec": {"organisation": {"id": "north", "displayName": "North", "sector": "local-government",
                                      "costCentre": "C1", "contactEmail": "it@north.example"},
                     "owners": [{"kind": "User", "name": "it@north.example"}],
                     "namespaces": [{"name": "app"}], "quota": {"cpu": "1"}}
        }))
        .unwrap();
        if let Some(key) = applied {
            t.annotations_mut().insert(commons_crds::labels::QUOTA_CHANGE_REQUEST.into(), key.into());
        }
        t
    }

    #[test]
    fn quota_changes_are_numbered_past_every_one_seen_and_the_one_applied() {
        let ns = "commons-requests";
        type Case<'a> = (&'a str, Vec<Arc<TenancyRequest>>, Option<&'a str>, u64);
        let cases: [Case; 6] = [
            ("the first", vec![], None, 1),
            ("after two", vec![request(ns, "a-quota-1"), request(ns, "a-quota-2")], None, 3),
            // Another tenancy's, a generated name and another namespace's do not count.
            (
                "others ignored",
                vec![
                    request(ns, "a-quota-1"),
                    request(ns, "ab-quota-7"),
                    request(ns, "a-quota-x9k2p"),
                    request("elsewhere", "a-quota-9"),
                ],
                None,
                2,
            ),
            ("a tenancy whose name is a prefix", vec![request(ns, "a-quota-1-quota-5")], None, 1),
            // The one the quota took is never reused, even once its request is deleted.
            ("applied then deleted", vec![request(ns, "a-quota-1")], Some("commons-requests/a-quota-4"), 5),
            ("applied, higher seen", vec![request(ns, "a-quota-6")], Some("commons-requests/a-quota-4"), 7),
        ];
        for (what, requests, applied, want) in cases {
            assert_eq!(next_change(&requests, ns, &tenancy("a", applied)), want, "{what}");
        }
    }
}

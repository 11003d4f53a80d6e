//! Fixture builders for the request controller's tests.

use commons_crds::tenancy::Tenancy;
use commons_crds::tenancy_request::{Outcome, TenancyRequest};

/// A request `name` in namespace `requests` for the tenancy `tenancy`, decided or not.
pub fn request(name: &str, tenancy: &str, outcome: Option<Outcome>) -> TenancyRequest {
    let status = outcome.map(|o| {
        let kind = match o {
            Outcome::Approved => "Approved",
            Outcome::Denied => "Denied",
        };
        serde_json::json!({
            "conditions": [{"type": kind, "status": "True", "reason": kind, "message": "",
                            "lastTransitionTime": "2026-12-01T00:00:00Z"}],
            "decision": {"outcome": kind, "decidedBy": "oidc:pat", "decidedAt": "2026-12-01T00:00:00Z",
                         "reason": "fine"}
        })
    });
    serde_json::from_value(serde_json::json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "TenancyRequest",
        "metadata": {"name": name, "namespace": "requests", "generation": 1},
        "spec": {
            "requester": {"organisation": "northshire-county-council", "name": "Nora", "email": "nora@north.example"},
            "tenancyName": tenancy,
            "tenancy": {
                "organisation": {"id": "northshire-county-council", "displayName": "Northshire", "sector": "local-government",
                                 "costCentre": "C1", "contactEmail": "it@north.example"},
                "owners": [{"kind": "User", "name": "nora@north.example"}],
                "namespaces": [{"name": "web"}]
            },
            "justification": "a sandbox to try things"
        },
        "status": status,
    }))
    .unwrap()
}

/// A request `name` in namespace `requests` to change the quota of the Tenancy `tenancy` to cpu 8
/// and memory 16Gi, decided or not.
pub fn quota_request(name: &str, tenancy: &str, outcome: Option<Outcome>) -> TenancyRequest {
    let mut r = request(name, tenancy, outcome);
    r.spec.tenancy = None;
    r.spec.quota = Some(commons_crds::tenancy::TenancyQuota {
        cpu: Some("8".into()),
        memory: Some("16Gi".into()),
        ..Default::default()
    });
    r
}

/// A Tenancy `name`, made from the request `from` (`namespace/name`) or not, Ready or not.
pub fn tenancy_with(name: &str, from: Option<&str>, ready: bool) -> Tenancy {
    let annotations = from.map(|f| serde_json::json!({ super::desired::FROM_REQUEST: f }));
    serde_json::from_value(serde_json::json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "organisation": {"id": "northshire-county-council", "displayName": "Northshire", "sector": "local-government",
                             "costCentre": "C1", "contactEmail": "it@north.example"},
            "owners": [{"kind": "User", "name": "nora@north.example"}],
            "namespaces": [{"name": "web"}]
        },
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                                   "reason": "x", "message": if ready { "" } else { "creating" },
                                   "lastTransitionTime": "2026-12-01T00:00:00Z"}]}
    }))
    .unwrap()
}

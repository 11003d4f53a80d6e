//! `TenancyRequest`: an organisation asks for a Tenancy; a platform team approves or denies it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tenancy::TenancySpec;

/// A request for a Tenancy, made by an organisation and decided by the platform team, in the way a
/// CertificateSigningRequest is: Approved or Denied conditions are written through the status
/// subresource, with who decided, when and why. The request is immutable once submitted, and a
/// decision once made cannot be changed.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "commons.dev",
    version = "v1alpha1",
    kind = "TenancyRequest",
    plural = "tenancyrequests",
    singular = "tenancyrequest",
    shortname = "tnr",
    category = "commons",
    namespaced,
    status = "TenancyRequestStatus",
    derive = "PartialEq",
    doc = "A request for a Tenancy, approved or denied by the platform team like a CertificateSigningRequest.",
    printcolumn(name = "Tenancy", type_ = "string", json_path = ".spec.tenancyName"),
    printcolumn(name = "Organisation", type_ = "string", json_path = ".spec.tenancy.organisation.displayName"),
    printcolumn(name = "Requester", type_ = "string", json_path = ".spec.requester.email"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".status.decision.outcome"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec == oldSelf.spec").message("spec is immutable once the request is submitted; make a new request").field_path(".spec")
)]
#[serde(rename_all = "camelCase")]
pub struct TenancyRequestSpec {
    /// Who asks.
    pub requester: Requester,
    /// The name the Tenancy is to have (a DNS label of at most 40 characters).
    #[schemars(length(min = 1, max = 40), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub tenancy_name: String,
    /// The Tenancy asked for.
    pub tenancy: TenancySpec,
    /// Why the organisation needs it, for the people who decide.
    #[schemars(length(min = 10, max = 4096))]
    pub justification: String,
}

/// The person asking, and for which organisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    /// The organisation the person asks for.
    #[schemars(length(min = 1, max = 128))]
    pub organisation: String,
    /// The person's name.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// The person's email address.
    #[schemars(length(max = 254), regex(pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"))]
    pub email: String,
}

/// The decision on a request and what followed from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.conditions) || !(self.conditions.exists(c, c.type == 'Approved' && c.status == 'True') && self.conditions.exists(c, c.type == 'Denied' && c.status == 'True'))").message("a request cannot be both Approved and Denied").field_path(".conditions"))]
#[x_kube(validation = Rule::new("!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision)").message("a decision cannot be changed or withdrawn once made").field_path(".decision"))]
#[x_kube(validation = Rule::new("!has(self.decision) || (has(self.conditions) && self.conditions.exists(c, c.type == self.decision.outcome && c.status == 'True'))").message("the condition matching decision.outcome must be True").field_path(".conditions"))]
pub struct TenancyRequestStatus {
    /// Approved, Denied and Provisioned, as standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Who decided, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The Tenancy created from the request, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<String>,
}

/// A decision on a tenancy request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Approved or Denied.
    pub outcome: Outcome,
    /// Who decided (their user name).
    #[schemars(length(min = 1, max = 253))]
    pub decided_by: String,
    /// When.
    pub decided_at: Time,
    /// Why.
    #[schemars(length(min = 1, max = 4096))]
    pub reason: String,
}

/// The outcome of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Outcome {
    /// The tenancy will be created.
    Approved,
    /// The tenancy will not be created.
    Denied,
}

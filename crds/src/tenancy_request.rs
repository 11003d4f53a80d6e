//! `TenancyRequest`: an organisation asks for a Tenancy; a platform team approves or denies it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tenancy::{TenancyQuota, TenancySpec};

/// A request, made by an organisation and decided by the platform team in the way a
/// CertificateSigningRequest is, for a new Tenancy (`spec.tenancy`) or for a change to the quota
/// of an existing one (`spec.quota`): Approved or Denied conditions are written through the status
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
    printcolumn(name = "Organisation", type_ = "string", json_path = ".spec.requester.organisation"),
    printcolumn(name = "Requester", type_ = "string", json_path = ".spec.requester.email"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".status.decision.outcome"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec == oldSelf.spec").message("spec is immutable once the request is submitted; make a new request").field_path(".spec")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.tenancy) != has(self.quota)").message("give either tenancy (to ask for a new Tenancy) or quota (to change the quota of the existing Tenancy tenancyName), not both").field_path(".tenancy"))]
pub struct TenancyRequestSpec {
    /// Who asks.
    pub requester: Requester,
    /// The name the Tenancy is to have (a DNS label of at most 40 characters).
    #[schemars(length(min = 1, max = 40), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub tenancy_name: String,
    /// A new Tenancy: its spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<TenancySpec>,
    /// A change to the quota of the existing Tenancy `tenancyName`: each limit given replaces
    /// the tenancy's own; limits not given stay as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("has(self.cpu) || has(self.memory) || has(self.storage) || has(self.pods) || has(self.loadBalancers)").message("ask for at least one of cpu, memory, storage, pods and loadBalancers"))]
    pub quota: Option<TenancyQuota>,
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

impl TenancyRequestSpec {
    /// The quota `tenancy` would hold once this quota change is applied (each limit asked for
    /// replaces its own; the rest stay). A request for a new tenancy changes no quota.
    pub fn quota_after(&self, current: Option<&TenancyQuota>) -> Option<TenancyQuota> {
        let asked = self.quota.as_ref()?;
        let mut q = current.cloned().unwrap_or_default();
        q.cpu = asked.cpu.clone().or(q.cpu);
        q.memory = asked.memory.clone().or(q.memory);
        q.storage = asked.storage.clone().or(q.storage);
        q.pods = asked.pods.or(q.pods);
        q.load_balancers = asked.load_balancers.or(q.load_balancers);
        Some(q)
    }
}

/// The decision on a request and what followed from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.conditions) || !(self.conditions.exists(c, c.type == 'Approved' && c.status == 'True') && self.conditions.exists(c, c.type == 'Denied' && c.status == 'True'))").message("a request cannot be both Approved and Denied").field_path(".conditions"))]
#[x_kube(validation = Rule::new("!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision)").message("a decision cannot be changed or withdrawn once made").field_path(".decision"))]
#[x_kube(validation = Rule::new("!has(self.decision) || (has(self.conditions) && self.conditions.exists(c, c.type == self.decision.outcome && c.status == 'True'))").message("the condition matching decision.outcome must be True").field_path(".conditions"))]
pub struct TenancyRequestStatus {
    /// Approved, Denied, and Provisioned (a new tenancy) or Applied (a quota change), as standard
    /// conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Who decided, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The Tenancy created (or whose quota was changed) by the request.
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
    /// The tenancy will be created, or its quota changed.
    Approved,
    /// Nothing will be done.
    Denied,
}

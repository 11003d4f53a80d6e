//! `Tenancy`: an organisation's share of the common cloud.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::allowed::Allowed;
use crate::common::{Amount, Classification, ResourceRequirements, Sector};

/// The longest a Tenancy name may be, so that `<tenancy>-<namespace>` still fits a DNS label.
pub const MAX_TENANCY_NAME: usize = 40;

/// An organisation's share of the common cloud: its namespaces, owners, quota, security
/// classification, network segments and budget. Cluster-scoped; Commons creates each namespace as
/// `<tenancy>-<name>`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "commons.dev",
    version = "v1alpha1",
    kind = "Tenancy",
    plural = "tenancies",
    singular = "tenancy",
    shortname = "tn",
    shortname = "tenant",
    category = "commons",
    status = "TenancyStatus",
    derive = "PartialEq",
    doc = "An organisation's share of the common cloud: namespaces, owners, quota, classification, network segments and budget.",
    printcolumn(name = "Organisation", type_ = "string", json_path = ".spec.organisation.displayName"),
    printcolumn(name = "Sector", type_ = "string", json_path = ".spec.organisation.sector"),
    printcolumn(name = "Spend", type_ = "string", json_path = ".status.budget.monthToDate", priority = 1),
    printcolumn(name = "Classification", type_ = "string", json_path = ".spec.classification"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspended", priority = 1),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 40").message("metadata.name must be a DNS label of at most 40 characters, so that <tenancy>-<namespace> is a valid namespace name"),
    validation = Rule::new("self.spec.namespaces.all(n, size(self.metadata.name) + size(n.name) < 63)").message("spec.namespaces: <tenancy>-<name> must be at most 63 characters").field_path(".spec.namespaces")
)]
#[serde(rename_all = "camelCase")]
pub struct TenancySpec {
    /// The organisation this tenancy belongs to.
    pub organisation: Organisation,
    /// Government Security Classification of the data the tenancy handles. Services in the
    /// tenancy may not be classified above it; segments may refuse tenancies by classification.
    #[serde(default)]
    pub classification: Classification,
    /// Who administers the tenancy. Each owner gets the Commons tenant-admin role in every
    /// namespace of the tenancy.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = Rule::new("self.all(o, self.exists_one(p, p.kind == o.kind && p.name == o.name))").message("owners must not repeat the same kind and name"))]
    pub owners: Vec<Owner>,
    /// The tenancy's namespaces; each is created as `<tenancy>-<name>`. At least one.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub namespaces: Vec<TenancyNamespace>,
    /// Hard limits over all the tenancy's namespaces together, never exceeded: Commons' quota
    /// webhook checks every pod, claim and Service against the whole tenancy, with per-namespace
    /// ResourceQuota shares that never add up to more behind it (docs/tenancy.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<TenancyQuota>,
    /// Requests and limits given to containers that set none, so every pod is counted and metered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<ResourceRequirements>,
    /// Names of the NetworkSegments the tenancy asks to join. Each segment admits or refuses it
    /// by its own rules; the outcome is in status.segments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(length(max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub network_segments: Vec<SegmentName>,
    /// Monthly budget; Commons raises BudgetExceeded and Events as spend crosses each threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// What the tenancy's workloads may use beyond the safe defaults: NodePort Services,
    /// PriorityClasses, tolerations, image registries and StorageClasses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
    /// Pod Security Admission level enforced in the tenancy's namespaces.
    #[serde(default)]
    pub pod_security: PodSecurityLevel,
    /// When true, no new pods start in the tenancy and its HostedServices scale to zero. Nothing
    /// is deleted; setting it back to false restores them.
    #[serde(default)]
    pub suspended: bool,
    /// Refuse the deletion of this Tenancy (which deletes all its namespaces and everything in
    /// them). When absent: on, unless the tenancy is a sandbox (has spec.expiresAt). To delete a
    /// protected tenancy, set this to false first. Enforced by Commons' admission webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    /// For sandbox tenancies: when the tenancy expires. Commons warns 7 days and 1 day before and
    /// suspends the tenancy at this time; it never deletes anything by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
}

impl TenancySpec {
    /// Whether deleting the Tenancy is refused: `spec.deletionProtection`, by default on for
    /// every tenancy that is not a sandbox (one with `spec.expiresAt`).
    pub fn deletion_protected(&self) -> bool {
        self.deletion_protection.unwrap_or(self.expires_at.is_none())
    }
}

/// A field read as empty when absent (`serde(default)`) that the schema nonetheless requires:
/// without the default schemars would put in it.
fn no_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

/// The organisation's schema requires `id`, although Commons reads a Tenancy without one.
fn require_id(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(required)) = schema.get_mut("required")
        && !required.iter().any(|r| r == "id")
    {
        required.insert(0, "id".into());
    }
}

/// The organisation a tenancy belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_id)]
pub struct Organisation {
    /// The organisation's stable identifier, the same in every tenancy of the organisation, for
    /// example `leeds-city-council`: reports group by it, FOCUS exports carry it as
    /// BillingAccountId, and the REST API authorises by it. A DNS label; it cannot be changed.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("the organisation's id cannot be changed; usage already recorded is attributed to it"))]
    // Required by the schema; read as empty from a Tenancy stored before ids existed, so one such
    // object does not stop Commons reading all the others.
    #[serde(default)]
    #[schemars(transform = no_default)]
    pub id: String,
    /// The organisation's name as people know it, for example "Leeds City Council". It may not
    /// begin with `=`, `+`, `-` or `@` (finance opens exports in spreadsheets, which would read it
    /// as a formula).
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[^=+\-@\t\r\n]"))]
    pub display_name: String,
    /// The part of the public sector the organisation belongs to.
    pub sector: Sector,
    /// The finance code usage is charged to.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"))]
    pub cost_centre: String,
    /// Where Commons and the platform team send notices about the tenancy.
    #[schemars(length(max = 254), regex(pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"))]
    pub contact_email: String,
}

/// A subject that administers the tenancy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == 'ServiceAccount' ? has(self.__namespace__) : !has(self.__namespace__)").message("namespace is required for a ServiceAccount owner and not allowed otherwise").field_path(".namespace"))]
pub struct Owner {
    /// The kind of subject, as in an RBAC RoleBinding.
    pub kind: OwnerKind,
    /// The user, group or service account name. Never a `system:` user or group: those are the
    /// cluster's own identities (`system:authenticated` would make every signed-in user an owner).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("!self.startsWith('system:')").message("system: users and groups are the cluster's own identities and cannot own a tenancy"))]
    pub name: String,
    /// The service account's namespace; only for kind ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// The kind of an RBAC subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OwnerKind {
    /// A person, as the cluster's authenticator names them.
    User,
    /// A group, as the cluster's authenticator names it.
    Group,
    /// A Kubernetes service account (give its namespace).
    ServiceAccount,
}

/// One namespace of a tenancy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenancyNamespace {
    /// The short name; the namespace is `<tenancy>-<name>`. A DNS label.
    #[schemars(length(min = 1, max = 62), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Extra labels for the namespace. The keys Commons sets itself (commons.dev/tenancy, sector,
    /// classification and cost-centre, the pod-security.kubernetes.io levels and
    /// app.kubernetes.io/managed-by) may not be set here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 63)))]
    #[x_kube(validation = Rule::new("!('commons.dev/tenancy' in self) && !('commons.dev/organisation' in self) && !('commons.dev/sector' in self) && !('commons.dev/classification' in self) && !('commons.dev/cost-centre' in self) && !('app.kubernetes.io/managed-by' in self) && !('kubernetes.io/metadata.name' in self) && !('pod-security.kubernetes.io/enforce' in self) && !('pod-security.kubernetes.io/enforce-version' in self) && !('pod-security.kubernetes.io/audit' in self) && !('pod-security.kubernetes.io/warn' in self)").message("label keys Commons sets (commons.dev/*, pod-security.kubernetes.io/*, app.kubernetes.io/managed-by) are managed by Commons"))]
    pub labels: BTreeMap<String, String>,
}

/// Hard limits over all of a tenancy's namespaces together.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenancyQuota {
    /// Total CPU requests, as a Kubernetes quantity (for example `16` or `16000m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self) && !quantity(self).isLessThan(quantity('0'))").message("must be a non-negative Kubernetes quantity, for example 16 or 500m"))]
    pub cpu: Option<String>,
    /// Total memory requests, as a Kubernetes quantity (for example `64Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self) && !quantity(self).isLessThan(quantity('0'))").message("must be a non-negative Kubernetes quantity, for example 64Gi"))]
    pub memory: Option<String>,
    /// Total persistent volume storage requested, as a Kubernetes quantity (for example `500Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self) && !quantity(self).isLessThan(quantity('0'))").message("must be a non-negative Kubernetes quantity, for example 500Gi"))]
    pub storage: Option<String>,
    /// Most pods at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub pods: Option<i32>,
    /// Most Services of type LoadBalancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10_000))]
    pub load_balancers: Option<i32>,
}

/// A NetworkSegment name.
pub type SegmentName = String;

/// A monthly budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The budget for one calendar month, an exact decimal string (for example `"2500.00"`).
    pub monthly_amount: Amount,
    /// ISO 4217 currency code; must match the rate card's currency.
    #[serde(default = "default_currency")]
    #[schemars(regex(pattern = "^[A-Z]{3}$"))]
    pub currency: String,
    /// Percentages of the monthly amount at which Commons warns (Events, the BudgetExceeded
    /// condition at 100 and above).
    #[serde(default = "default_thresholds")]
    #[schemars(length(max = 10))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new("self.all(t, t >= 1 && t <= 1000)").message("each threshold is a percentage from 1 to 1000"))]
    pub alert_thresholds: Vec<i32>,
}

fn default_currency() -> String {
    "GBP".to_owned()
}

fn default_thresholds() -> Vec<i32> {
    vec![80, 100]
}

/// Pod Security Admission level for a tenancy's namespaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    /// The hardened profile (the default).
    #[default]
    Restricted,
    /// The minimally restrictive profile that still prevents known privilege escalations.
    Baseline,
}

impl PodSecurityLevel {
    /// The level as Pod Security Admission labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Restricted => "restricted",
            PodSecurityLevel::Baseline => "baseline",
        }
    }
}

/// What Commons observed and did for a tenancy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenancyStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, QuotaApplied, NetworkReady, BudgetExceeded and Expiring, as standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The namespaces of the tenancy as they stand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceStatus>,
    /// Quota across the whole tenancy: hard limits and what is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStatus>,
    /// Each requested network segment, joined or refused with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentMembership>,
    /// This month's spend against spec.budget, from the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
}

/// A month's spend against the budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetStatus {
    /// The month, `YYYY-MM` (UTC).
    pub period: String,
    /// Spend so far this month, an exact decimal string.
    pub month_to_date: String,
    /// Spend by the month's end if what the tenancy holds now is held until then.
    pub projected: String,
    /// The currency of both.
    pub currency: String,
    /// The alert thresholds (percentages of the budget) the month's spend has reached; each is
    /// announced by an Event once a month.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds_reached: Vec<i32>,
}

/// A namespace of the tenancy as it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStatus {
    /// The full namespace name, `<tenancy>-<name>`.
    pub name: String,
    /// Whether the namespace exists and belongs to this tenancy.
    pub ready: bool,
    /// Why not, when it is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Tenancy-wide quota: hard limits and usage, keyed by resource name (`cpu`, `memory`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaStatus {
    /// The tenancy's hard limits.
    #[serde(default)]
    pub hard: BTreeMap<String, String>,
    /// What all the tenancy's namespaces use together.
    #[serde(default)]
    pub used: BTreeMap<String, String>,
}

/// Whether a segment admitted the tenancy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMembership {
    /// The segment name.
    pub name: String,
    /// Joined, Refused or Pending (the segment does not exist yet).
    pub state: MembershipState,
    /// A machine-readable reason, for example ClassificationNotAdmitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The outcome of asking to join a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MembershipState {
    /// Admitted; the segment's paths apply to the tenancy.
    Joined,
    /// Not admitted; see the reason.
    Refused,
    /// The segment does not exist (yet).
    Pending,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn an_organisation_id_is_required_by_the_schema_but_a_tenancy_stored_without_one_still_reads() {
        let crd = serde_json::to_value(Tenancy::crd()).unwrap();
        let org = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["organisation"];
        assert!(org["required"].as_array().unwrap().iter().any(|r| r == "id"), "{org}");
        assert!(org["properties"]["id"].get("default").is_none(), "no default: a missing id is refused");
        let old: Organisation = serde_json::from_value(serde_json::json!({
            "displayName": "Old Council", "sector": "local-government", "costCentre": "X", "contactEmail": "a@b.gov.uk"
        }))
        .unwrap();
        assert_eq!(old.id, "");
    }
}

//! `NetworkSegment`: a named zone of the government-wide network that tenancies join.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Classification, Protocol, Sector};

/// A named zone of the government-wide network (for example an inter-government network, the
/// internet edge, or a classification level). Tenancies ask to join it; its admission rules decide;
/// Commons realises the allowed paths as NetworkPolicies in the members' namespaces.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "commons.dev",
    version = "v1alpha1",
    kind = "NetworkSegment",
    plural = "networksegments",
    singular = "networksegment",
    shortname = "seg",
    shortname = "netseg",
    category = "commons",
    status = "NetworkSegmentStatus",
    derive = "PartialEq",
    doc = "A named zone of the government-wide network that tenancies join by rule.",
    printcolumn(name = "Classification", type_ = "string", json_path = ".spec.classification"),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.memberCount"),
    printcolumn(name = "Refused", type_ = "integer", json_path = ".status.refusedCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be a DNS label (it is used as a label value)"),
    validation = Rule::new("!has(self.spec.peers) || !self.spec.peers.exists(p, p == self.metadata.name)").message("spec.peers must not name the segment itself").field_path(".spec.peers")
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSegmentSpec {
    /// What the segment is for, for people reading it.
    #[schemars(length(min = 1, max = 1024))]
    pub description: String,
    /// The classification of the segment. A tenancy classified below it is admitted only when
    /// admission.classifications names the tenancy's classification.
    #[serde(default)]
    pub classification: Classification,
    /// Who may join.
    #[serde(default)]
    pub admission: SegmentAdmission,
    /// Other segments whose members may reach this segment's members (one way: peers reach us).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub peers: Vec<String>,
    /// Networks outside the cluster that members may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub egress: Vec<ExternalRule>,
    /// Networks outside the cluster that may reach members' services exposed to the segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub ingress: Vec<ExternalRule>,
}

/// Who may join a segment. A tenancy is admitted when it is named in `tenancies`, or when its
/// sector is allowed (any sector when `sectors` is empty) and its classification is allowed (when
/// `classifications` is empty: the segment's own classification and above).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentAdmission {
    /// Sectors whose tenancies may join; empty means every sector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 9))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub sectors: Vec<Sector>,
    /// Tenancies admitted by name, whatever their sector or classification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 512),
        inner(length(max = 40), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub tenancies: Vec<String>,
    /// Classifications admitted; empty means the segment's classification and above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub classifications: Vec<Classification>,
}

/// A range of addresses outside the cluster, and the ports a rule opens to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.except) || self.except.all(e, isCIDR(e) && cidr(self.cidr).containsCIDR(e))").message("each except entry must be a CIDR inside cidr").field_path(".except"))]
pub struct ExternalRule {
    /// What the range is, for people reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
    /// The address range, in CIDR notation (for example `51.0.0.0/8`).
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("isCIDR(self)").message("must be a CIDR, for example 10.20.0.0/16 or 2001:db8::/32"))]
    pub cidr: String,
    /// Ranges inside cidr to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(max = 64)))]
    pub except: Vec<String>,
    /// The ports opened; empty means every port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub ports: Vec<PortRange>,
}

/// A port, or a range of ports, of one protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.endPort) || self.endPort >= self.port").message("endPort must not be below port").field_path(".endPort"))]
pub struct PortRange {
    /// The protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// The port, or the first port of the range.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The last port of the range, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub end_port: Option<i32>,
}

/// What Commons observed and did for a segment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSegmentStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, as a standard condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Tenancies admitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// How many tenancies are admitted.
    #[serde(default)]
    pub member_count: i32,
    /// Tenancies that asked to join and were refused, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedMember>,
    /// How many tenancies were refused.
    #[serde(default)]
    pub refused_count: i32,
    /// How many NetworkPolicies Commons maintains for the segment.
    #[serde(default)]
    pub policies: i32,
}

/// A tenancy a segment refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedMember {
    /// The tenancy name.
    pub tenancy: String,
    /// A machine-readable reason, for example SectorNotAdmitted.
    pub reason: String,
    /// A human-readable explanation.
    pub message: String,
}

//! `HostedService`: an application a tenancy hosts, possibly shared or published to the catalogue.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Classification, Protocol, ResourceRequirements};

/// An application a tenancy hosts in one of its namespaces: Commons runs it as a Deployment and a
/// Service with the policies its exposure needs. It may be shared with other tenancies, who are
/// charged for it, or published to the catalogue for reuse.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "commons.dev",
    version = "v1alpha1",
    kind = "HostedService",
    plural = "hostedservices",
    singular = "hostedservice",
    shortname = "hs",
    shortname = "hsvc",
    category = "commons",
    namespaced,
    status = "HostedServiceStatus",
    derive = "PartialEq",
    doc = "An application a tenancy hosts, optionally shared with other tenancies or published to the catalogue.",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas","labelSelectorPath":".status.selector"}"#,
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image", priority = 1),
    printcolumn(name = "Exposure", type_ = "string", json_path = ".spec.exposure"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be a DNS-1035 label (it names the Service)")
)]
#[serde(rename_all = "camelCase")]
pub struct HostedServiceSpec {
    /// The container image, for example `registry.example.gov.uk/payroll:2.4.1`.
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new("!self.contains(' ')").message("an image reference has no spaces"))]
    pub image: String,
    /// How many copies to run. Scaled to zero while the tenancy is suspended.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// The ports the application listens on; each becomes a port of its Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.port == p.port && q.protocol == p.protocol))").message("ports must not repeat the same port and protocol"))]
    pub ports: Vec<ServicePort>,
    /// CPU and memory requests and limits for the application container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Environment variables, as in a Kubernetes container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,
    /// Health checks, as in a Kubernetes container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,
    /// Classification of the data the service handles; never above its tenancy's (Commons
    /// refuses to run it otherwise and says so in status).
    #[serde(default)]
    pub classification: Classification,
    /// Who may reach the service: its own tenancy, members of the tenancy's network segments, or
    /// the public internet.
    #[serde(default)]
    pub exposure: Exposure,
    /// Other tenancies that use the service and share its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Sharing>,
    /// Publication to the catalogue (the applications store) for other organisations to reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalogue: Option<Catalogue>,
}

fn default_replicas() -> i32 {
    1
}

/// A port the application listens on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// The port's name (an IANA service name: lower case, at most 15 characters), for example `http`.
    #[schemars(length(min = 1, max = 15), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// The port the Service offers.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The port the container listens on; the same as port when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<i32>,
    /// The protocol.
    #[serde(default)]
    pub protocol: Protocol,
}

/// Health checks for the application container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.readiness) || [has(self.readiness.exec), has(self.readiness.httpGet), has(self.readiness.tcpSocket), has(self.readiness.grpc)].filter(x, x).size() <= 1").message("a probe has one handler: exec, httpGet, tcpSocket or grpc").field_path(".readiness"),
    validation = Rule::new("!has(self.liveness) || [has(self.liveness.exec), has(self.liveness.httpGet), has(self.liveness.tcpSocket), has(self.liveness.grpc)].filter(x, x).size() <= 1").message("a probe has one handler: exec, httpGet, tcpSocket or grpc").field_path(".liveness"),
    validation = Rule::new("!has(self.startup) || [has(self.startup.exec), has(self.startup.httpGet), has(self.startup.tcpSocket), has(self.startup.grpc)].filter(x, x).size() <= 1").message("a probe has one handler: exec, httpGet, tcpSocket or grpc").field_path(".startup")
)]
pub struct Probes {
    /// When the container is ready for traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    /// When the container must be restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    /// When a slow-starting container has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
}

/// Who may reach a hosted service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// Only the tenancy's own namespaces (and admitted sharing consumers).
    #[default]
    Tenancy,
    /// Members of the network segments the tenancy has joined, and their peers.
    Segment,
    /// The public internet, through the cluster's ingress.
    Public,
}

/// Sharing a service with other tenancies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.costSplit != 'weighted' || (has(self.weights) && size(self.weights) == size(self.consumers) && self.consumers.all(c, c in self.weights))").message("with costSplit weighted, weights must give exactly one weight for each consumer").field_path(".weights"),
    validation = Rule::new("self.costSplit == 'weighted' || !has(self.weights) || size(self.weights) == 0").message("weights are only allowed with costSplit weighted").field_path(".weights")
)]
pub struct Sharing {
    /// Names of the tenancies that use the service. The hosting tenancy may list itself to carry
    /// a share of the cost.
    #[schemars(
        length(min = 1, max = 256),
        inner(length(max = 40), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub consumers: Vec<String>,
    /// How the service's cost is divided among the consumers.
    #[serde(default)]
    pub cost_split: CostSplit,
    /// With costSplit weighted: each consumer's relative weight (1 to 10000).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(validation = Rule::new("self.all(k, self[k] >= 1 && self[k] <= 10000)").message("each weight must be from 1 to 10000"))]
    pub weights: BTreeMap<String, i32>,
}

/// How a shared service's cost is divided among its consumers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CostSplit {
    /// In equal shares.
    #[default]
    Equal,
    /// In proportion to the weights.
    Weighted,
}

/// Publication to the catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.publish || (has(self.title) && has(self.description))").message("a published service needs a title and a description").field_path(".title"))]
pub struct Catalogue {
    /// Whether the service is listed in the catalogue.
    #[serde(default)]
    pub publish: bool,
    /// The listing's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub title: Option<String>,
    /// What the service does and who it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub description: Option<String>,
    /// The catalogue category, for example `hr`, `payroll`, `case-management`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub category: Option<String>,
}

/// What Commons observed and did for a hosted service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostedServiceStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Admitted, Ready and Progressing, as standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// How many copies exist.
    #[serde(default)]
    pub replicas: i32,
    /// How many copies are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// How many copies run the current spec.
    #[serde(default)]
    pub updated_replicas: i32,
    /// The label selector of the service's pods, for the scale subresource (autoscalers read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Where the service is reached, for example `payroll.hr-prod.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Each consumer tenancy, admitted or refused with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerStatus>,
}

/// Whether a consumer tenancy may use the service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// The consumer tenancy.
    pub tenancy: String,
    /// Whether it is admitted.
    pub admitted: bool,
    /// A machine-readable reason when refused, for example TenancyNotFound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

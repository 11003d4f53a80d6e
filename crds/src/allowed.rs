//! What a tenancy's workloads may use beyond the safe defaults: node ports, priority classes,
//! tolerations, image registries and storage classes (`spec.allowed`). Commons' admission webhook
//! enforces it on every pod, Service and PersistentVolumeClaim in the tenancy's namespaces.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// What the tenancy's workloads may use. Every field is optional and the defaults are the safe
/// ones: no NodePort Services, no PriorityClass but the cluster's global default, no tolerations
/// beyond Kubernetes' own node-condition ones, images from the operator's default registries, and
/// claims of any StorageClass. Services with `externalIPs` are never admitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Allowed {
    /// Services of type NodePort (which open a port on every node) are admitted.
    #[serde(default)]
    pub node_ports: bool,
    /// PriorityClasses pods may name. Pods that name none, or the cluster's global default
    /// class, are always admitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub priority_classes: Vec<String>,
    /// Taints pods may tolerate, beyond the node-condition taints Kubernetes tolerates for
    /// every pod (`node.kubernetes.io/not-ready`, `unreachable`, `unschedulable`,
    /// `memory-pressure`, `disk-pressure`, `pid-pressure` and `network-unavailable`). A pod
    /// toleration is admitted when an entry has its key and, where the entry sets them, its value
    /// and effect. A toleration of every taint (an empty key) is never admitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub tolerations: Vec<AllowedToleration>,
    /// Registries (optionally with a path) container images may come from, for example
    /// `registry.k8s.io` or `ghcr.io/leeds-city-council`. An image without a registry is Docker
    /// Hub's (`nginx` is `docker.io/library/nginx`). When absent, the operator's default
    /// (`--allowed-registries`) applies, and without one any registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 32),
        inner(
            length(min = 1, max = 255),
            regex(
                pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([-a-z0-9._/]*[a-z0-9])?)?$"
            )
        )
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub registries: Option<Vec<String>>,
    /// StorageClasses PersistentVolumeClaims may use. When absent, any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub storage_classes: Option<Vec<String>>,
}

/// A taint pods of the tenancy may tolerate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllowedToleration {
    /// The taint key, for example `dedicated`.
    #[schemars(length(min = 1, max = 316))]
    pub key: String,
    /// The taint value; when absent, any value (and `operator: Exists`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub value: Option<String>,
    /// The taint effect; when absent, any effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

/// A taint effect, as Kubernetes names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TaintEffect {
    /// New pods are not scheduled on the node.
    NoSchedule,
    /// The scheduler avoids the node.
    PreferNoSchedule,
    /// Running pods are evicted from the node.
    NoExecute,
}

impl TaintEffect {
    /// The effect as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

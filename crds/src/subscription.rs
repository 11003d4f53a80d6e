//! `Subscription`: a tenancy's consent to use another tenancy's HostedService, shared or as an
//! instance of its own.

use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Classification;
use crate::hosted_service::Exposure;

/// The consumer's side of sharing: created by a tenancy's owner in one of its own namespaces, it
/// names a provider's HostedService. Shared use becomes Active only when the provider lists the
/// consumer's tenancy in `spec.sharing.consumers` and the consumer is cleared for the service's
/// classification; then exactly the path from this namespace to that service's pods opens. An
/// instance subscription runs a copy of a published service in this namespace instead.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "commons.dev",
    version = "v1alpha1",
    kind = "Subscription",
    plural = "subscriptions",
    singular = "subscription",
    shortname = "sub",
    category = "commons",
    namespaced,
    status = "SubscriptionStatus",
    derive = "PartialEq",
    doc = "A tenancy's use of another tenancy's HostedService: shared (with the provider's consent) or an instance of its own.",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.service.namespace"),
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service.name"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec.mode == 'instance' || !has(self.spec.instance)").message("spec.instance is only allowed with spec.mode instance").field_path(".spec.instance"),
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be a DNS-1035 label of at most 63 characters (an instance is a HostedService of that name)")
)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// The provider's HostedService. Fixed once made: to use another service, end this
    /// subscription and make another (billing follows each subscription from start to end).
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.service cannot be changed; end this subscription and make another"))]
    pub service: ServiceReference,
    /// `shared` (the default): use the provider's running service, sharing its cost; `instance`:
    /// run a copy of a published service in this namespace, at this tenancy's own cost. Fixed once
    /// made.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.mode cannot be changed; end this subscription and make another"))]
    pub mode: SubscriptionMode,
    /// With mode `instance`: how the copy runs. Image, ports, resources and probes come from the
    /// published service; what is here is the consumer's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceSettings>,
}

/// A HostedService by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReference {
    /// The provider's namespace.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: String,
    /// The HostedService's name.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
}

/// How a subscription uses a service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionMode {
    /// Use the provider's running service.
    #[default]
    Shared,
    /// Run a copy of a published service in the consumer's namespace.
    Instance,
}

/// How an instance copy runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSettings {
    /// How many copies to run (1 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// The classification of the data the copy handles; the consumer tenancy's own when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    /// Who may reach the copy (its own tenancy when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<Exposure>,
    /// The copy's environment variables (the provider's are never copied: they are its own
    /// configuration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,
}

/// Where a subscription is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SubscriptionPhase {
    /// Waiting: for the provider to list the consumer, or for the service to exist.
    Pending,
    /// In use: the path is open (shared), or the copy is made (instance).
    Active,
    /// Refused for a reason the consumer cannot wait out (its classification, say).
    Refused,
    /// Ended by the provider after it was active. Final: a new subscription starts again.
    Ended,
}

/// What Commons observed and did for a subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Active, Refused or Ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SubscriptionPhase>,
    /// A machine-readable reason when not Active: NotListed, ClassificationTooLow,
    /// ServiceNotFound, ProviderSuspended, NotPublished, ConsumerNotInTenancy, ProviderNotInTenancy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the service is reached from the consumer's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// When the subscription last became Active (metering bills from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Time>,
    /// When it stopped being Active (metering bills until here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
    /// Whether the service used is ready (the provider's, or the instance copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_ready: Option<bool>,
    /// With mode instance: the HostedService made in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Ready, as a standard condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

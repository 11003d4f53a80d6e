//! `RateCard`: the prices usage is charged at.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::Amount;

/// The prices Commons charges usage at, per unit-hour, from a date. Prices are exact decimal strings,
/// never floats. The rate card in force at an instant is the one with the latest effectiveFrom not
/// after it.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "commons.dev",
    version = "v1alpha1",
    kind = "RateCard",
    plural = "ratecards",
    singular = "ratecard",
    shortname = "rc",
    category = "commons",
    status = "RateCardStatus",
    derive = "PartialEq",
    doc = "Prices per unit-hour, as exact decimals, in force from a date.",
    printcolumn(name = "Currency", type_ = "string", json_path = ".spec.currency"),
    printcolumn(name = "Effective", type_ = "date", json_path = ".spec.effectiveFrom"),
    printcolumn(name = "CPU/h", type_ = "string", json_path = ".spec.prices.cpuCoreHour"),
    printcolumn(name = "Memory/h", type_ = "string", json_path = ".spec.prices.memoryGibHour"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("a rate card cannot be changed once written (closed months and corrections are priced with it): publish a new card with a later effectiveFrom"))]
pub struct RateCardSpec {
    /// ISO 4217 currency code of every price, for example `GBP`.
    #[schemars(regex(pattern = "^[A-Z]{3}$"))]
    pub currency: String,
    /// When these prices take effect (RFC 3339).
    pub effective_from: Time,
    /// Prices per unit-hour.
    pub prices: Prices,
    /// A percentage added to every charge for the platform's shared running costs, for example
    /// `"12.5"`. From 0 to 100.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self.matches('^(100(\\\\.0+)?|[0-9]{1,2}(\\\\.[0-9]+)?)$')").message("must be a percentage from 0 to 100, for example \"12.5\""))]
    pub platform_overhead_percent: Amount,
}

/// Prices per unit-hour, each an exact non-negative decimal string such as `"0.0345"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    /// Price of one CPU core requested for one hour.
    pub cpu_core_hour: Amount,
    /// Price of one GiB of memory requested for one hour.
    pub memory_gib_hour: Amount,
    /// Price of one GiB of persistent storage requested for one hour.
    pub storage_gib_hour: Amount,
    /// Price of one Service of type LoadBalancer for one hour.
    pub load_balancer_hour: Amount,
}

/// What Commons observed of a rate card.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateCardStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// InForce (the card now in force) and Superseded, as standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

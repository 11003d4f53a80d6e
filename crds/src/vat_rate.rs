//! `VatRate`: the value added tax added to charges, from a date.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::Amount;

/// The VAT rate added to every charge, as a percentage in force from a date, apart from the rate
/// cards (a change of VAT needs no new prices, and a change of prices no new VAT). The rate in
/// force at an instant is the one with the latest effectiveFrom not after it; before the first,
/// no VAT is charged.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "commons.dev",
    version = "v1alpha1",
    kind = "VatRate",
    plural = "vatrates",
    singular = "vatrate",
    shortname = "vat",
    category = "commons",
    derive = "PartialEq",
    doc = "A VAT percentage added to every charge, in force from a date.",
    printcolumn(name = "Percent", type_ = "string", json_path = ".spec.percent"),
    printcolumn(name = "Effective", type_ = "date", json_path = ".spec.effectiveFrom"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("a VAT rate cannot be changed once written (closed months are taxed with it): publish a new one with a later effectiveFrom"))]
pub struct VatRateSpec {
    /// The percentage added to each charge, for example `"20"`. From 0 to 100.
    #[x_kube(validation = Rule::new("self.matches('^(100(\\\\.0+)?|[0-9]{1,2}(\\\\.[0-9]+)?)$')").message("must be a percentage from 0 to 100, for example \"20\""))]
    pub percent: Amount,
    /// When this rate takes effect (RFC 3339).
    pub effective_from: Time,
}

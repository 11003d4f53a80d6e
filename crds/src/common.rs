//! Value types shared by several kinds: sectors, classifications, quantities, prices, ports.

use std::fmt;
use std::str::FromStr;

use kube::KubeSchema;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The part of the public sector an organisation belongs to. It decides which network segments the
/// organisation may join and how its usage is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Sector {
    /// Schools, academy trusts, colleges and universities.
    Education,
    /// NHS trusts, integrated care boards and public health bodies.
    Health,
    /// Police forces, courts, prisons and probation.
    CriminalJustice,
    /// County, district, borough and unitary councils.
    LocalGovernment,
    /// Employment and benefits services.
    WorkAndPensions,
    /// Defence and the armed forces.
    Defence,
    /// Tax collection and customs.
    RevenueAndCustoms,
    /// Partnerships of several bodies across sectors (for example a safeguarding hub).
    MultiAgency,
    /// Central government departments and agencies not listed above.
    CentralGovernment,
}

impl Sector {
    /// Every sector, in declaration order.
    pub const ALL: [Sector; 9] = [
        Sector::Education,
        Sector::Health,
        Sector::CriminalJustice,
        Sector::LocalGovernment,
        Sector::WorkAndPensions,
        Sector::Defence,
        Sector::RevenueAndCustoms,
        Sector::MultiAgency,
        Sector::CentralGovernment,
    ];

    /// The wire form, as written in manifests and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Sector::Education => "education",
            Sector::Health => "health",
            Sector::CriminalJustice => "criminal-justice",
            Sector::LocalGovernment => "local-government",
            Sector::WorkAndPensions => "work-and-pensions",
            Sector::Defence => "defence",
            Sector::RevenueAndCustoms => "revenue-and-customs",
            Sector::MultiAgency => "multi-agency",
            Sector::CentralGovernment => "central-government",
        }
    }
}

impl fmt::Display for Sector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Government Security Classification of the data a tenancy or service handles. Ordered: OFFICIAL is
/// below OFFICIAL-SENSITIVE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// OFFICIAL: the routine business of the public sector.
    #[default]
    Official,
    /// OFFICIAL-SENSITIVE: OFFICIAL information needing extra care (need-to-know handling).
    OfficialSensitive,
}

impl Classification {
    /// The wire form, as written in manifests and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Official => "official",
            Classification::OfficialSensitive => "official-sensitive",
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transport protocol of a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP.
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The wire form, as Kubernetes writes it (`TCP`, `UDP`, `SCTP`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// CPU and memory for one container, as Kubernetes quantities (for example `250m`, `512Mi`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputeResources {
    /// CPU, as a Kubernetes quantity (`500m` is half a core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("must be a Kubernetes quantity, for example 500m or 2"))]
    pub cpu: Option<String>,
    /// Memory, as a Kubernetes quantity (`512Mi`, `2Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("must be a Kubernetes quantity, for example 512Mi or 2Gi"))]
    pub memory: Option<String>,
}

/// Requests and limits for one container. A limit is never below its request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.requests) || !has(self.limits) || !has(self.requests.cpu) || !has(self.limits.cpu) || quantity(self.limits.cpu).compareTo(quantity(self.requests.cpu)) >= 0").message("limits.cpu must not be below requests.cpu").field_path(".limits.cpu"),
    validation = Rule::new("!has(self.requests) || !has(self.limits) || !has(self.requests.memory) || !has(self.limits.memory) || quantity(self.limits.memory).compareTo(quantity(self.requests.memory)) >= 0").message("limits.memory must not be below requests.memory").field_path(".limits.memory")
)]
pub struct ResourceRequirements {
    /// What the scheduler reserves for the container and what metering charges for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ComputeResources>,
    /// The most the container may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ComputeResources>,
}

/// An exact, non-negative decimal amount written as a string, for example `"0.0345"`.
///
/// Money and prices are never floats: a YAML number is rejected by the apiserver (the schema type is
/// string), and so is any string that is not plain decimal notation (no sign, no exponent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

/// The pattern an [`Amount`] must match: up to 12 integer digits and up to 10 decimal places.
pub const AMOUNT_PATTERN: &str = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,10})?$";

/// Why a string is not an [`Amount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountError(String);

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a non-negative decimal amount in plain notation (for example \"0.0345\")",
            self.0
        )
    }
}

impl std::error::Error for AmountError {}

impl Amount {
    /// The amount as an exact decimal.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// Builds an amount from a decimal; `None` if it is negative.
    pub fn new(value: Decimal) -> Option<Self> {
        (!value.is_sign_negative() || value.is_zero()).then_some(Amount(value))
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let plain = {
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            let int_ok = !int.is_empty()
                && int.len() <= 12
                && int.bytes().all(|b| b.is_ascii_digit())
                && (int == "0" || !int.starts_with('0'));
            let frac_ok = !s.contains('.')
                || (!frac.is_empty() && frac.len() <= 10 && frac.bytes().all(|b| b.is_ascii_digit()));
            int_ok && frac_ok
        };
        if !plain {
            return Err(AmountError(s.to_owned()));
        }
        Decimal::from_str_exact(s).map(Amount).map_err(|_| AmountError(s.to_owned()))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Amount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "maxLength": 23,
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// The pattern of a DNS label (RFC 1123), as Kubernetes names namespaces.
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The pattern of an ISO 4217 currency code.
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_only_plain_non_negative_decimals() {
        for ok in ["0", "0.0345", "12", "100.5", "999999999999.0000000001"] {
            assert!(ok.parse::<Amount>().is_ok(), "{ok} should parse");
        }
        for bad in ["-1", "-0.5", "1e-3", "1.", ".5", "01", "", "+1", "0.12345678901", "NaN", "1,5"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn amounts_round_trip_exactly() {
        let a: Amount = "0.1".parse().unwrap();
        let b: Amount = "0.2".parse().unwrap();
        assert_eq!((a.value() + b.value()).to_string(), "0.3");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"0.1\"");
        let back: Amount = serde_json::from_str("\"0.1\"").unwrap();
        assert_eq!(back, a);
        assert!(serde_json::from_str::<Amount>("0.1").is_err(), "a JSON number is not an amount");
    }

    #[test]
    fn classifications_are_ordered() {
        assert!(Classification::Official < Classification::OfficialSensitive);
    }

    #[test]
    fn sector_wire_names_match_serde() {
        for s in Sector::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
    }
}

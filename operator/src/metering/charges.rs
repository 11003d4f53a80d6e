//! Charge lines (pure): the grain every report, export and closed period is made of. A charge line
//! is one tenancy's namespace's charge for one thing (CPU, memory, storage, load balancers, the
//! platform overhead, VAT, a shared service or its credit), within one HostedService or none,
//! attributed as the ledger recorded it, priced by one rate card (or VAT rate) and rounded once.
//! Lines with no tenancy are the platform's unallocated capacity. `rater` makes them; corrections
//! are here.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

use super::rating::{RatingError, Resource};
use crate::ledger::Interval;

/// What a line charges for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charge {
    /// CPU core-hours.
    Cpu,
    /// Memory GiB-hours.
    Memory,
    /// Storage GiB-hours.
    Storage,
    /// Load-balancer-hours.
    LoadBalancer,
    /// The platform's shared running costs: the rate card's overhead percentage of the above.
    PlatformOverhead,
    /// Node CPU no tenancy's pod reserved (charged to no tenancy).
    UnallocatedCpu,
    /// Node memory no tenancy's pod reserved (charged to no tenancy).
    UnallocatedMemory,
    /// A consumer's share of a shared HostedService's cost.
    SharedService,
    /// The provider's credit for what its consumers' shares paid (negative).
    SharedServiceCredit,
    /// Value added tax on the grain's charges, at the VAT rate named in the line's `rate_card`.
    Vat,
}

impl Charge {
    /// Every charge, in line order.
    pub const ALL: [Charge; 10] = [
        Charge::Cpu,
        Charge::Memory,
        Charge::Storage,
        Charge::LoadBalancer,
        Charge::PlatformOverhead,
        Charge::UnallocatedCpu,
        Charge::UnallocatedMemory,
        Charge::SharedService,
        Charge::SharedServiceCredit,
        Charge::Vat,
    ];

    /// The charge for holding `resource`.
    pub fn of(resource: Resource) -> Charge {
        match resource {
            Resource::Cpu => Charge::Cpu,
            Resource::Memory => Charge::Memory,
            Resource::Storage => Charge::Storage,
            Resource::LoadBalancer => Charge::LoadBalancer,
        }
    }

    /// The unit its quantity is in.
    pub fn unit(self) -> &'static str {
        match self {
            Charge::Cpu | Charge::UnallocatedCpu => "core-hours",
            Charge::Memory | Charge::Storage | Charge::UnallocatedMemory => "GiB-hours",
            Charge::LoadBalancer => "hours",
            Charge::PlatformOverhead | Charge::SharedService | Charge::SharedServiceCredit | Charge::Vat => {
                ""
            }
        }
    }

    /// The charge a stored name stands for.
    pub fn parse(s: &str) -> Option<Charge> {
        Charge::ALL.into_iter().find(|c| c.to_string() == s)
    }
}

impl fmt::Display for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Charge::Cpu => "cpu",
            Charge::Memory => "memory",
            Charge::Storage => "storage",
            Charge::LoadBalancer => "load-balancer",
            Charge::PlatformOverhead => "platform-overhead",
            Charge::UnallocatedCpu => "unallocated-cpu",
            Charge::UnallocatedMemory => "unallocated-memory",
            Charge::SharedService => "shared-service",
            Charge::SharedServiceCredit => "shared-service-credit",
            Charge::Vat => "vat",
        })
    }
}

/// Who and what a charge line is for.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grain {
    /// The Tenancy.
    pub tenancy: String,
    /// The namespace.
    pub namespace: String,
    /// The HostedService, or empty.
    pub hosted_service: String,
    /// The organisation's id.
    pub organisation: String,
    /// The organisation's name.
    pub organisation_name: String,
    /// The organisation's sector.
    pub sector: String,
    /// The tenancy's cost centre.
    pub cost_centre: String,
}

impl Grain {
    /// The grain an interval is charged at.
    pub fn of(i: &Interval) -> Grain {
        let a = &i.attribution;
        Grain {
            tenancy: a.tenancy.clone(),
            namespace: i.namespace.clone(),
            hosted_service: a.hosted_service.clone(),
            organisation: a.organisation.clone(),
            organisation_name: a.organisation_name.clone(),
            sector: a.sector.clone(),
            cost_centre: a.cost_centre.clone(),
        }
    }
}

/// One charge line, rounded once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeLine {
    /// Who and what it is for.
    #[serde(flatten)]
    pub grain: Grain,
    /// What it charges for.
    pub charge: Charge,
    /// Unit-hours, exact (none for the overhead).
    #[serde(with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
    /// The amount, rounded to the currency's minor unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The rate card it is priced with (a price change within the period makes a line for each).
    pub rate_card: String,
    /// For a correction: the earlier closed period it corrects (`YYYY-MM`); empty otherwise.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub corrects: String,
}

/// Why usage cannot be charged.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// Usage that no card prices.
    #[error("interval {key}: {source}")]
    Rating {
        /// The interval.
        key: String,
        /// Why.
        #[source]
        source: RatingError,
    },
    /// No rate card at all.
    #[error("no rate card: usage cannot be priced (kubectl get ratecards)")]
    NoCards,
    /// Two VAT rates from the same instant.
    #[error("VAT rates {0} and {1} take effect at the same instant: delete one (kubectl get vatrates)")]
    VatConflict(String, String),
}

/// What a charge line is for: grain, charge and rate card.
type LineKey = (Grain, Charge, String);

/// What must be added to `billed` (lines already charged for a period) to make it `due` (the
/// period's lines as they should be now): one correction line per grain and charge that differs,
/// for `period`. Empty when nothing changed.
pub fn corrections(period: &str, due: &[ChargeLine], billed: &[ChargeLine]) -> Vec<ChargeLine> {
    let mut delta: BTreeMap<LineKey, (Option<Decimal>, Decimal)> = BTreeMap::new();
    let mut add = |l: &ChargeLine, sign: Decimal| {
        let d =
            delta.entry((l.grain.clone(), l.charge, l.rate_card.clone())).or_insert((None, Decimal::ZERO));
        if let Some(q) = l.quantity {
            d.0 = Some(d.0.unwrap_or_default() + q * sign);
        }
        d.1 += l.amount * sign;
    };
    due.iter().for_each(|l| add(l, Decimal::ONE));
    billed.iter().for_each(|l| add(l, Decimal::NEGATIVE_ONE));
    delta
        .into_iter()
        .filter(|(_, (q, a))| !a.is_zero() || q.is_some_and(|q| !q.is_zero()))
        .map(|((grain, charge, rate_card), (quantity, amount))| ChargeLine {
            grain,
            charge,
            quantity: quantity.map(|q| q.normalize()),
            amount,
            rate_card,
            corrects: period.to_owned(),
        })
        .collect()
}

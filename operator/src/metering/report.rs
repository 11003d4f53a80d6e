//! The spend of a period (pure): the ledger's intervals, clipped to the period, priced with the
//! rate cards in force at each instant (`rating`), summed exactly per group and resource, and
//! rounded once per line (`money`). The platform overhead is a line of its own in every group.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use super::money;
use super::rating::{self, Card, RatingError, Resource, Usage};
use crate::ledger::Interval;

/// What lines are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum By {
    /// Each Tenancy.
    Tenancy,
    /// Each organisation (by id).
    Organisation,
    /// Each sector.
    Sector,
    /// Each cost centre.
    CostCentre,
    /// Each HostedService (`namespace/name`); what runs outside one, per tenancy.
    Service,
}

impl By {
    /// The grouping a command-line word names.
    pub fn parse(s: &str) -> Option<By> {
        match s {
            "tenancy" => Some(By::Tenancy),
            "organisation" => Some(By::Organisation),
            "sector" => Some(By::Sector),
            "cost-centre" => Some(By::CostCentre),
            "service" => Some(By::Service),
            _ => None,
        }
    }

    fn key(self, i: &Interval) -> (String, String) {
        let (group, name) = self.group(i);
        if group.is_empty() {
            // Recorded before its tenancy had an organisation id.
            (format!("({} not recorded)", self.word()), name)
        } else {
            (group, name)
        }
    }

    fn word(self) -> &'static str {
        match self {
            By::Tenancy => "tenancy",
            By::Organisation => "organisation id",
            By::Sector => "sector",
            By::CostCentre => "cost centre",
            By::Service => "service",
        }
    }

    fn group(self, i: &Interval) -> (String, String) {
        let a = &i.attribution;
        match self {
            By::Tenancy => (a.tenancy.clone(), a.organisation_name.clone()),
            By::Organisation => (a.organisation.clone(), a.organisation_name.clone()),
            By::Sector => (a.sector.clone(), String::new()),
            By::CostCentre => (a.cost_centre.clone(), a.organisation_name.clone()),
            By::Service if a.hosted_service.is_empty() => {
                (format!("{} (not in a hosted service)", a.tenancy), a.organisation_name.clone())
            }
            By::Service => (format!("{}/{}", i.namespace, a.hosted_service), a.organisation_name.clone()),
        }
    }
}

/// What a line charges for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
}

impl Charge {
    fn of(resource: Resource) -> Charge {
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
            Charge::Cpu => "core-hours",
            Charge::Memory | Charge::Storage => "GiB-hours",
            Charge::LoadBalancer => "hours",
            Charge::PlatformOverhead => "",
        }
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
        })
    }
}

/// One line: a group's charge for one thing, rounded once.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The group (a tenancy, organisation id, sector, cost centre or service).
    pub group: String,
    /// The organisation's name, where the group has one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub organisation_name: String,
    /// What it charges for.
    pub charge: Charge,
    /// Unit-hours, exact (none for the overhead).
    #[serde(with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
    /// The amount, rounded to the currency's minor unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// The spend of a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// From (inclusive).
    pub from: Timestamp,
    /// Until (exclusive): the period's end, or now for a period still running.
    pub until: Timestamp,
    /// How lines are grouped.
    pub by: By,
    /// The currency of every amount.
    pub currency: String,
    /// Every line, by group then charge.
    pub lines: Vec<Line>,
    /// The sum of the lines.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

/// Sums priced intervals; [`Acc::finish`] rounds them into lines.
#[derive(Debug)]
pub struct Acc {
    from: Timestamp,
    until: Timestamp,
    by: By,
    cards: Vec<Card>,
    groups: BTreeMap<(String, Charge), (String, Decimal, Decimal)>,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
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
}

/// GiB in milli-bytes.
fn gib(milli: i64) -> Decimal {
    Decimal::from(milli) / Decimal::from(1000_i64 << 30)
}

/// The usages an interval holds over `[from, until)`.
fn usages(i: &Interval, from: Timestamp, until: Timestamp) -> Vec<Usage> {
    let start = Timestamp::from_millisecond(i.start_ms).unwrap_or(from).max(from);
    let end = i.end_ms.and_then(|e| Timestamp::from_millisecond(e).ok()).unwrap_or(until).min(until);
    if end <= start {
        return Vec::new();
    }
    let h = i.held;
    [
        (Resource::Cpu, Decimal::new(h.cpu_milli, 3)),
        (Resource::Memory, gib(h.memory_milli)),
        (Resource::Storage, gib(h.storage_milli)),
        (Resource::LoadBalancer, Decimal::new(h.load_balancer_milli, 3)),
    ]
    .into_iter()
    .filter(|(_, q)| !q.is_zero())
    .map(|(resource, quantity)| Usage { resource, quantity, start, end })
    .collect()
}

impl Acc {
    /// A report of `[from, until)` grouped `by`, priced with `cards`.
    pub fn new(from: Timestamp, until: Timestamp, by: By, cards: Vec<Card>) -> Result<Acc, ReportError> {
        if cards.is_empty() {
            return Err(ReportError::NoCards);
        }
        Ok(Acc { from, until, by, cards, groups: BTreeMap::new() })
    }

    /// Adds what `interval` held within the period.
    pub fn add(&mut self, interval: &Interval) -> Result<(), ReportError> {
        let (group, name) = self.by.key(interval);
        for usage in usages(interval, self.from, self.until) {
            let parts = rating::price(&usage, &self.cards)
                .map_err(|source| ReportError::Rating { key: interval.key.clone(), source })?;
            for p in parts {
                let overhead = p.amount * self.cards[p.card].overhead_percent / Decimal::ONE_HUNDRED;
                let line = self
                    .groups
                    .entry((group.clone(), Charge::of(usage.resource)))
                    .or_insert_with(|| (name.clone(), Decimal::ZERO, Decimal::ZERO));
                line.1 += p.unit_seconds;
                line.2 += p.amount;
                let o = self
                    .groups
                    .entry((group.clone(), Charge::PlatformOverhead))
                    .or_insert_with(|| (name.clone(), Decimal::ZERO, Decimal::ZERO));
                o.2 += overhead;
            }
        }
        Ok(())
    }

    /// The lines, each rounded once to the currency's minor unit, and their total.
    pub fn finish(self) -> Report {
        let currency = self.cards.first().map(|c| c.currency.clone()).unwrap_or_default();
        let places = money::minor_unit_places(&currency);
        let lines: Vec<Line> = self
            .groups
            .into_iter()
            .map(|((group, charge), (organisation_name, unit_seconds, amount))| Line {
                group,
                organisation_name,
                charge,
                quantity: (charge != Charge::PlatformOverhead)
                    .then(|| (unit_seconds / Decimal::from(3600)).normalize()),
                amount: money::round(amount, places),
            })
            .collect();
        let total = lines.iter().map(|l| l.amount).sum();
        Report { from: self.from, until: self.until, by: self.by, currency, lines, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Attribution, Held, Kind};
    use rust_decimal::dec;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn card(from: &str, cpu: Decimal) -> Card {
        Card {
            name: from.into(),
            effective_from: at(from),
            currency: "GBP".into(),
            cpu,
            memory: dec!(0.005),
            storage: dec!(0.0001),
            load_balancer: dec!(0.02),
            overhead_percent: dec!(10),
        }
    }

    fn pod(tenancy: &str, cpu_milli: i64, gib: i64, from: &str, to: Option<&str>) -> Interval {
        Interval {
            key: format!("pod/{tenancy}/{from}"),
            kind: Kind::Pod,
            uid: tenancy.into(),
            namespace: format!("{tenancy}-app"),
            name: "p".into(),
            attribution: Attribution {
                tenancy: tenancy.into(),
                organisation: format!("{tenancy}-org"),
                organisation_name: format!("{tenancy} council"),
                sector: "local-government".into(),
                cost_centre: "CC".into(),
                hosted_service: String::new(),
            },
            held: Held { cpu_milli, memory_milli: gib * 1000 * (1 << 30), ..Held::default() },
            start_ms: at(from).as_millisecond(),
            end_ms: to.map(|t| at(t).as_millisecond()),
            estimated: false,
        }
    }

    fn line<'a>(r: &'a Report, group: &str, charge: Charge) -> &'a Line {
        r.lines.iter().find(|l| l.group == group && l.charge == charge).unwrap()
    }

    #[test]
    fn intervals_are_clipped_to_the_period_priced_summed_and_rounded_once_per_line() {
        let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let mut acc =
            Acc::new(from, until, By::Tenancy, vec![card("2026-01-01T00:00:00Z", dec!(0.04))]).unwrap();
        // 10 hours in October and 10 in November: only November's count.
        acc.add(&pod("north", 500, 2, "2026-10-31T14:00:00Z", Some("2026-11-01T10:00:00Z"))).unwrap();
        // Still running: counts until the period's end.
        acc.add(&pod("north", 250, 1, "2026-11-30T23:00:00Z", None)).unwrap();
        acc.add(&pod("south", 1000, 0, "2026-12-01T00:00:00Z", None)).unwrap();
        let r = acc.finish();
        let cpu = line(&r, "north", Charge::Cpu);
        assert_eq!(cpu.quantity, Some(dec!(5.25)), "0.5 × 10 h + 0.25 × 1 h");
        assert_eq!(cpu.amount, dec!(0.21));
        let memory = line(&r, "north", Charge::Memory);
        assert_eq!(
            (memory.quantity, memory.amount),
            (Some(dec!(21)), dec!(0.11)),
            "21 GiB-h × 0.005 = 0.105"
        );
        // 10% of the exact 0.21 + 0.105.
        assert_eq!(line(&r, "north", Charge::PlatformOverhead).amount, dec!(0.03));
        assert!(r.lines.iter().all(|l| l.group != "south"), "south held nothing in November");
        assert_eq!(r.total, dec!(0.35));
    }

    #[test]
    fn a_price_change_mid_period_prices_each_part_with_its_own_card() {
        let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let cards = vec![card("2026-01-01T00:00:00Z", dec!(0.04)), card("2026-11-15T00:00:00Z", dec!(0.08))];
        let mut acc = Acc::new(from, until, By::Organisation, cards).unwrap();
        acc.add(&pod("north", 1000, 0, "2026-11-14T12:00:00Z", Some("2026-11-15T12:00:00Z"))).unwrap();
        let r = acc.finish();
        let cpu = line(&r, "north-org", Charge::Cpu);
        assert_eq!((cpu.quantity, cpu.amount), (Some(dec!(24)), dec!(1.44)), "12 h at 0.04 and 12 h at 0.08");
        assert_eq!(cpu.organisation_name, "north council");
    }

    #[test]
    fn usage_before_any_card_is_refused_naming_the_interval() {
        let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let mut acc =
            Acc::new(from, until, By::Sector, vec![card("2026-11-10T00:00:00Z", dec!(0.04))]).unwrap();
        let err = acc.add(&pod("north", 1000, 0, "2026-11-05T00:00:00Z", None)).unwrap_err();
        assert!(
            err.to_string().contains("pod/north/2026-11-05") && err.to_string().contains("no rate card"),
            "{err}"
        );
        assert!(matches!(Acc::new(from, until, By::Sector, vec![]), Err(ReportError::NoCards)));
    }
}

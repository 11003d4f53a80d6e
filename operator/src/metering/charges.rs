//! Charge lines (pure): the ledger's intervals over a period, priced with the rate cards in force
//! at each instant (`rating`), summed exactly per **charge line** and rounded once (`money`). A
//! charge line is the grain every report, export and closed period is made of: one tenancy's
//! namespace's charge for one thing (CPU, memory, storage, load balancers, or the platform
//! overhead), within one HostedService or none, attributed as the ledger recorded it.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use super::money;
use super::rating::{self, Card, RatingError, Resource, Usage};
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

    /// The charge a stored name stands for.
    pub fn parse(s: &str) -> Option<Charge> {
        [Charge::Cpu, Charge::Memory, Charge::Storage, Charge::LoadBalancer, Charge::PlatformOverhead]
            .into_iter()
            .find(|c| c.to_string() == s)
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
}

/// GiB in milli-bytes.
fn gib(milli: i64) -> Decimal {
    Decimal::from(milli) / Decimal::from(1000_i64 << 30)
}

/// What an interval holds over `[from, until)`, as it was known at `as_of` (an end written later
/// than `as_of` is not known then: the interval was still open).
fn usages(i: &Interval, from: Timestamp, until: Timestamp, as_of: Option<i64>) -> Vec<Usage> {
    let end_known = match (i.end_ms, as_of) {
        (Some(end), Some(t)) if i.end_recorded_ms.is_some_and(|r| r <= t) => Some(end),
        (Some(_), Some(_)) => None,
        (end, None) => end,
        (None, _) => None,
    };
    let start = Timestamp::from_millisecond(i.start_ms).unwrap_or(from).max(from);
    let end = end_known.and_then(|e| Timestamp::from_millisecond(e).ok()).unwrap_or(until).min(until);
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

/// What a charge line is for: grain, charge and rate card.
type LineKey = (Grain, Charge, String);

/// Prices intervals into charge lines.
#[derive(Debug)]
pub struct Rater {
    from: Timestamp,
    until: Timestamp,
    as_of: Option<i64>,
    cards: Vec<Card>,
    sums: BTreeMap<LineKey, (Decimal, Decimal)>,
}

impl Rater {
    /// Charges `[from, until)` with `cards`, from the ledger as it was known at `as_of` (Unix ms:
    /// intervals recorded later are skipped, ends written later are not known), or as it is now.
    pub fn new(
        from: Timestamp,
        until: Timestamp,
        cards: Vec<Card>,
        as_of: Option<i64>,
    ) -> Result<Rater, ChargeError> {
        if cards.is_empty() {
            return Err(ChargeError::NoCards);
        }
        Ok(Rater { from, until, as_of, cards, sums: BTreeMap::new() })
    }

    /// The currency of every amount.
    pub fn currency(&self) -> &str {
        self.cards.first().map(|c| c.currency.as_str()).unwrap_or_default()
    }

    /// Adds what `interval` held within the period.
    pub fn add(&mut self, interval: &Interval) -> Result<(), ChargeError> {
        if self.as_of.is_some_and(|t| interval.recorded_ms > t) {
            return Ok(());
        }
        let grain = Grain::of(interval);
        for usage in usages(interval, self.from, self.until, self.as_of) {
            let parts = rating::price(&usage, &self.cards)
                .map_err(|source| ChargeError::Rating { key: interval.key.clone(), source })?;
            for p in parts {
                let card = &self.cards[p.card];
                let overhead = p.amount * card.overhead_percent / Decimal::ONE_HUNDRED;
                let line = self
                    .sums
                    .entry((grain.clone(), Charge::of(usage.resource), card.name.clone()))
                    .or_default();
                line.0 += p.unit_seconds;
                line.1 += p.amount;
                self.sums
                    .entry((grain.clone(), Charge::PlatformOverhead, card.name.clone()))
                    .or_default()
                    .1 += overhead;
            }
        }
        Ok(())
    }

    /// The charge lines, each rounded once to the currency's minor unit, in a fixed order.
    pub fn finish(self) -> Vec<ChargeLine> {
        let places =
            money::minor_unit_places(self.cards.first().map(|c| c.currency.as_str()).unwrap_or_default());
        self.sums
            .into_iter()
            .map(|((grain, charge, rate_card), (unit_seconds, amount))| ChargeLine {
                grain,
                charge,
                quantity: (charge != Charge::PlatformOverhead)
                    .then(|| (unit_seconds / Decimal::from(3600)).normalize()),
                amount: money::round(amount, places),
                rate_card,
                corrects: String::new(),
            })
            .collect()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Attribution, Held, Kind};
    use rust_decimal::dec;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(crate) fn card(from: &str, cpu: Decimal) -> Card {
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

    pub(crate) fn pod(tenancy: &str, cpu_milli: i64, gib: i64, from: &str, to: Option<&str>) -> Interval {
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
            recorded_ms: at(from).as_millisecond(),
            end_recorded_ms: to.map(|t| at(t).as_millisecond()),
        }
    }

    fn line(lines: &[ChargeLine], tenancy: &str, charge: Charge) -> ChargeLine {
        lines.iter().find(|l| l.grain.tenancy == tenancy && l.charge == charge).unwrap().clone()
    }

    #[test]
    fn intervals_are_clipped_to_the_period_priced_summed_and_rounded_once_per_line() {
        let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let mut r = Rater::new(from, until, vec![card("2026-01-01T00:00:00Z", dec!(0.04))], None).unwrap();
        // 10 hours in October and 10 in November: only November's count.
        r.add(&pod("north", 500, 2, "2026-10-31T14:00:00Z", Some("2026-11-01T10:00:00Z"))).unwrap();
        // Still running: counts until the period's end.
        r.add(&pod("north", 250, 1, "2026-11-30T23:00:00Z", None)).unwrap();
        r.add(&pod("south", 1000, 0, "2026-12-01T00:00:00Z", None)).unwrap();
        let lines = r.finish();
        let cpu = line(&lines, "north", Charge::Cpu);
        assert_eq!((cpu.quantity, cpu.amount), (Some(dec!(5.25)), dec!(0.21)), "0.5 × 10 h + 0.25 × 1 h");
        let memory = line(&lines, "north", Charge::Memory);
        assert_eq!(
            (memory.quantity, memory.amount),
            (Some(dec!(21)), dec!(0.11)),
            "21 GiB-h × 0.005 = 0.105"
        );
        assert_eq!(line(&lines, "north", Charge::PlatformOverhead).amount, dec!(0.03), "10% of 0.315");
        assert!(lines.iter().all(|l| l.grain.tenancy != "south"), "south held nothing in November");
    }

    #[test]
    fn a_price_change_mid_period_prices_each_part_with_its_own_card() {
        let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let cards = vec![card("2026-01-01T00:00:00Z", dec!(0.04)), card("2026-11-15T00:00:00Z", dec!(0.08))];
        let mut r = Rater::new(from, until, cards, None).unwrap();
        r.add(&pod("north", 1000, 0, "2026-11-14T12:00:00Z", Some("2026-11-15T12:00:00Z"))).unwrap();
        let lines = r.finish();
        let cpu: Vec<&ChargeLine> = lines.iter().filter(|l| l.charge == Charge::Cpu).collect();
        assert_eq!(cpu.len(), 2, "one line per card");
        assert_eq!(
            (cpu[0].quantity, cpu[0].amount, cpu[0].rate_card.as_str()),
            (Some(dec!(12)), dec!(0.48), "2026-01-01T00:00:00Z")
        );
        assert_eq!(
            (cpu[1].quantity, cpu[1].amount, cpu[1].rate_card.as_str()),
            (Some(dec!(12)), dec!(0.96), "2026-11-15T00:00:00Z")
        );
    }

    #[test]
    fn as_of_an_instant_the_ledger_is_rated_as_it_was_known_then() {
        let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let cards = vec![card("2026-01-01T00:00:00Z", dec!(1))];
        let mut ended_late = pod("north", 1000, 0, "2026-11-30T00:00:00Z", Some("2026-11-30T12:00:00Z"));
        ended_late.end_recorded_ms = Some(at("2026-12-03T00:00:00Z").as_millisecond());
        let mut learned_late = pod("south", 1000, 0, "2026-11-02T00:00:00Z", Some("2026-11-02T01:00:00Z"));
        learned_late.recorded_ms = at("2026-12-04T00:00:00Z").as_millisecond();
        let close = Some(at("2026-12-02T00:00:00Z").as_millisecond());
        let mut then = Rater::new(from, until, cards.clone(), close).unwrap();
        let mut now = Rater::new(from, until, cards, None).unwrap();
        for i in [&ended_late, &learned_late] {
            then.add(i).unwrap();
            now.add(i).unwrap();
        }
        let (then, now) = (then.finish(), now.finish());
        assert_eq!(
            line(&then, "north", Charge::Cpu).amount,
            dec!(24),
            "still open at the close: to month end"
        );
        assert!(then.iter().all(|l| l.grain.tenancy != "south"), "not yet recorded at the close");
        assert_eq!(line(&now, "north", Charge::Cpu).amount, dec!(12));
        // What was learned later is a correction: 12 h less for north, one hour more for south.
        let fix = corrections("2026-11", &now, &then);
        assert_eq!(line(&fix, "north", Charge::Cpu).amount, dec!(-12));
        assert_eq!(line(&fix, "north", Charge::Cpu).quantity, Some(dec!(-12)));
        assert_eq!(line(&fix, "south", Charge::Cpu).amount, dec!(1));
        assert!(fix.iter().all(|l| l.corrects == "2026-11"));
        assert!(corrections("2026-11", &now, &now).is_empty(), "nothing learned, nothing corrected");
    }

    #[test]
    fn usage_before_any_card_is_refused_naming_the_interval() {
        let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let mut r = Rater::new(from, until, vec![card("2026-11-10T00:00:00Z", dec!(0.04))], None).unwrap();
        let err = r.add(&pod("north", 1000, 0, "2026-11-05T00:00:00Z", None)).unwrap_err();
        assert!(
            err.to_string().contains("pod/north/2026-11-05") && err.to_string().contains("no rate card"),
            "{err}"
        );
        assert!(matches!(Rater::new(from, until, vec![], None), Err(ChargeError::NoCards)));
    }
}

//! The rater (pure): the ledger's intervals over a period priced into charge lines.
//!
//! Each interval is clipped to the period (as the ledger was known at an instant, when closing),
//! priced with the rate card in force at each instant (`rating`) and summed exactly per charge
//! line, with the card's platform overhead and the VAT in force (its own effective dates). Three
//! things need every interval before they are known, and are made when the rater finishes:
//! - **Unallocated capacity**: what the nodes offered (their allocatable CPU and memory) less what
//!   the tenancies' pods reserved while nodes were recorded, priced like any CPU or memory, on lines
//!   of its own charged to no tenancy. The nodes are given first (`with_context`), so each pod's
//!   reservation is counted only for the time capacity was known.
//!
//! Nodes and shares (few) are given before the stream of other intervals, and everything is
//! aggregated as it comes: rating a month takes memory by charge line, not by interval.
//! - **Shared services** (`sharing`): the provider's cost moved to the tenancies sharing it.
//! - **VAT** on every grain's charges, moved ones included.
//!
//! Every line is rounded once; a credit shared among consumers is split by largest remainder so
//! the consumers' lines add up to the provider's credit exactly.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::charges::{Charge, ChargeError, ChargeLine, Grain};
use super::money;
use super::rating::{self, Resource, Tariff, Usage};
use super::sharing::{Cost, Share, Sharing};
use crate::ledger::{Interval, Kind};

/// GiB in milli-bytes.
fn gib(milli: i64) -> Decimal {
    Decimal::from(milli) / Decimal::from(1000_i64 << 30)
}

/// The part of `[from, until)` an interval covers, as it was known at `as_of` (an end written
/// later than `as_of` is not known then: the interval was still open).
fn span(
    i: &Interval,
    from: Timestamp,
    until: Timestamp,
    as_of: Option<i64>,
) -> Option<(Timestamp, Timestamp)> {
    let end_known = match (i.end_ms, as_of) {
        (Some(end), Some(t)) if i.end_recorded_ms.is_some_and(|r| r <= t) => Some(end),
        (Some(_), Some(_)) => None,
        (end, None) => end,
        (None, _) => None,
    };
    let start = Timestamp::from_millisecond(i.start_ms).unwrap_or(from).max(from);
    let end = end_known.and_then(|e| Timestamp::from_millisecond(e).ok()).unwrap_or(until).min(until);
    (end > start).then_some((start, end))
}

/// What an interval holds over its span, resource by resource.
fn usages(i: &Interval, start: Timestamp, end: Timestamp) -> Vec<Usage> {
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

/// What a charge line is for: grain, charge and rate card (or VAT rate).
type LineKey = (Grain, Charge, String);

/// Prices intervals into charge lines.
#[derive(Debug)]
pub struct Rater {
    from: Timestamp,
    until: Timestamp,
    as_of: Option<i64>,
    tariff: Tariff,
    /// Unit-seconds and exact amount per line.
    sums: BTreeMap<LineKey, (Decimal, Decimal)>,
    /// Exact VAT per grain and VAT rate.
    vat: BTreeMap<(Grain, String), Decimal>,
    /// Per resource and card: unit-seconds the nodes offered, and the pods reserved.
    capacity: BTreeMap<(Resource, usize), (Decimal, Decimal)>,
    /// When some node's capacity was recorded: disjoint spans, in order.
    coverage: Vec<(Timestamp, Timestamp)>,
    sharing: Sharing,
}

impl Rater {
    /// Charges `[from, until)` with `tariff`, from the ledger as it was known at `as_of` (Unix ms:
    /// intervals recorded later are skipped, ends written later are not known), or as it is now.
    pub fn new(
        from: Timestamp,
        until: Timestamp,
        tariff: Tariff,
        as_of: Option<i64>,
    ) -> Result<Rater, ChargeError> {
        if tariff.cards.is_empty() {
            return Err(ChargeError::NoCards);
        }
        if let Some((a, b)) = tariff.vat_conflict() {
            return Err(ChargeError::VatConflict(a.to_owned(), b.to_owned()));
        }
        Ok(Rater {
            from,
            until,
            as_of,
            tariff,
            sums: BTreeMap::new(),
            vat: BTreeMap::new(),
            capacity: BTreeMap::new(),
            coverage: Vec::new(),
            sharing: Sharing::default(),
        })
    }

    /// Adds what the nodes offered and the shares of shared services (their intervals, all of
    /// them, before any other is added): what no tenancy's pod reserved of the nodes becomes the
    /// unallocated-capacity lines; the shares split their services' costs.
    pub fn with_context(mut self, context: &[Interval]) -> Result<Rater, ChargeError> {
        let mut spans = Vec::new();
        for n in context {
            if self.as_of.is_some_and(|t| n.recorded_ms > t) {
                continue;
            }
            let Some((start, end)) = span(n, self.from, self.until, self.as_of) else { continue };
            if matches!(n.kind, Kind::Share | Kind::ProviderShare) {
                self.sharing.share(Share {
                    grain: Grain::of(n),
                    weight: Decimal::from(n.held.share_weight),
                    start,
                    end,
                });
                continue;
            }
            if n.kind != Kind::Node {
                continue;
            }
            spans.push((start, end));
            for usage in usages(n, start, end) {
                for p in self.price(n, &usage)? {
                    self.capacity.entry((usage.resource, p.card)).or_default().0 += p.unit_seconds;
                }
            }
        }
        spans.sort();
        for (s, e) in spans {
            match self.coverage.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => self.coverage.push((s, e)),
            }
        }
        Ok(self)
    }

    /// Seconds of `[start, end)` during which node capacity was recorded.
    fn covered(&self, start: Timestamp, end: Timestamp) -> Decimal {
        self.coverage
            .iter()
            .map(|&(s, e)| (s.max(start), e.min(end)))
            .filter(|(s, e)| s < e)
            .map(|(s, e)| seconds(s, e))
            .sum()
    }

    /// The currency of every amount.
    pub fn currency(&self) -> &str {
        self.tariff.cards.first().map(|c| c.currency.as_str()).unwrap_or_default()
    }

    /// Adds what `interval` held within the period.
    pub fn add(&mut self, interval: &Interval) -> Result<(), ChargeError> {
        if self.as_of.is_some_and(|t| interval.recorded_ms > t) {
            return Ok(());
        }
        let Some((start, end)) = span(interval, self.from, self.until, self.as_of) else {
            return Ok(());
        };
        let grain = Grain::of(interval);
        match interval.kind {
            // Given to `with_context`, before any other.
            Kind::Node | Kind::Share | Kind::ProviderShare => return Ok(()),
            Kind::Pod | Kind::Claim | Kind::LoadBalancer => {}
        }
        let shared = self.sharing.is_shared(&grain);
        for usage in usages(interval, start, end) {
            for p in self.price(interval, &usage)? {
                let card = &self.tariff.cards[p.card];
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
                if interval.kind == Kind::Pod && !self.coverage.is_empty() {
                    let reserved = usage.quantity * self.covered(p.start, p.end);
                    self.capacity.entry((usage.resource, p.card)).or_default().1 += reserved;
                }
                let gross = p.amount + overhead;
                for (a, b, rate) in self.tariff.vat_parts(p.start, p.end) {
                    let Some(rate) = rate.map(|r| &self.tariff.vat[r]) else { continue };
                    let part =
                        gross * seconds(a, b) / seconds(p.start, p.end) * rate.percent / Decimal::ONE_HUNDRED;
                    *self.vat.entry((grain.clone(), rate.name.clone())).or_default() += part;
                }
                if shared {
                    let cost = Cost {
                        grain: grain.clone(),
                        card: card.name.clone(),
                        start: p.start,
                        end: p.end,
                        amount: gross,
                    };
                    self.sharing.cost(&cost, &self.tariff);
                }
            }
        }
        Ok(())
    }

    fn price(&self, interval: &Interval, usage: &Usage) -> Result<Vec<rating::Priced>, ChargeError> {
        rating::price(usage, &self.tariff.cards)
            .map_err(|source| ChargeError::Rating { key: interval.key.clone(), source })
    }

    /// What sharing each shared service saved (`sharing::Saving`).
    pub fn savings(&self) -> Vec<super::sharing::Saving> {
        self.sharing.savings(money::minor_unit_places(self.currency()))
    }

    /// The charge lines, each rounded once to the currency's minor unit, in a fixed order.
    pub fn finish(mut self) -> Vec<ChargeLine> {
        let places = money::minor_unit_places(self.currency());
        let mut lines = Vec::new();
        // What nodes offered and no tenancy's pod reserved, on lines of its own.
        for ((resource, card), (offered, reserved)) in &self.capacity {
            let unit_seconds = (*offered - *reserved).max(Decimal::ZERO);
            let charge = match resource {
                Resource::Cpu => Charge::UnallocatedCpu,
                Resource::Memory => Charge::UnallocatedMemory,
                Resource::Storage | Resource::LoadBalancer => continue,
            };
            if unit_seconds.is_zero() {
                continue;
            }
            let card = &self.tariff.cards[*card];
            let amount = unit_seconds * card.price(*resource) / Decimal::from(3600);
            self.sums.entry((Grain::default(), charge, card.name.clone())).or_default().0 += unit_seconds;
            self.sums.entry((Grain::default(), charge, card.name.clone())).or_default().1 += amount;
        }
        // Shared services: one credit for the provider, a charge for each consumer, adding up.
        let (moves, vat_moves) = self.sharing.split();
        for ((provider, card), consumers) in moves {
            let exact: Vec<Decimal> = consumers.values().copied().collect();
            let credit = money::round(exact.iter().copied().sum(), places);
            if credit.is_zero() {
                continue;
            }
            let Some(parts) = money::split(credit, &exact, places) else { continue };
            let line = |grain: Grain, charge, amount| ChargeLine {
                grain,
                charge,
                quantity: None,
                amount,
                rate_card: card.clone(),
                corrects: String::new(),
            };
            lines.push(line(provider.clone(), Charge::SharedServiceCredit, -credit));
            for (consumer, part) in consumers.into_keys().zip(parts) {
                lines.push(line(consumer, Charge::SharedService, part));
            }
        }
        for (key, v) in vat_moves {
            *self.vat.entry(key).or_default() += v;
        }
        for ((grain, charge, rate_card), (unit_seconds, amount)) in self.sums {
            let usage = !matches!(charge, Charge::PlatformOverhead);
            lines.push(ChargeLine {
                grain,
                charge,
                quantity: usage.then(|| (unit_seconds / Decimal::from(3600)).normalize()),
                amount: money::round(amount, places),
                rate_card,
                corrects: String::new(),
            });
        }
        for ((grain, rate), amount) in self.vat {
            let amount = money::round(amount, places);
            if !amount.is_zero() {
                lines.push(ChargeLine {
                    grain,
                    charge: Charge::Vat,
                    quantity: None,
                    amount,
                    rate_card: rate,
                    corrects: String::new(),
                });
            }
        }
        lines.sort_by(|a, b| (&a.grain, a.charge, &a.rate_card).cmp(&(&b.grain, b.charge, &b.rate_card)));
        lines
    }
}

fn seconds(a: Timestamp, b: Timestamp) -> Decimal {
    Decimal::from_i128_with_scale((b.as_nanosecond() - a.as_nanosecond()).max(1), 9)
}

#[cfg(test)]
#[path = "rater_tests.rs"]
mod tests;

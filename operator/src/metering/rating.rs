//! Rating (pure): pricing a stretch of allocation with the rate card in force at each instant.
//!
//! A piece of usage (a quantity of one resource held from one instant to another) is split at
//! every instant a new rate card takes effect, and each part is priced exactly with its card:
//! quantity × seconds × price per unit-hour ÷ 3600. Nothing is rounded here (see `money`).

use jiff::Timestamp;
use rust_decimal::Decimal;

/// What is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// CPU cores requested.
    Cpu,
    /// Memory requested, in GiB.
    Memory,
    /// Persistent storage requested, in GiB.
    Storage,
    /// Services of type LoadBalancer.
    LoadBalancer,
}

/// A rate card as rating reads it: prices per unit-hour from an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// The card's name.
    pub name: String,
    /// When its prices take effect.
    pub effective_from: Timestamp,
    /// Its currency (ISO 4217).
    pub currency: String,
    /// Per CPU core-hour.
    pub cpu: Decimal,
    /// Per GiB-hour of memory.
    pub memory: Decimal,
    /// Per GiB-hour of storage.
    pub storage: Decimal,
    /// Per load-balancer-hour.
    pub load_balancer: Decimal,
    /// The platform overhead, a percentage of every charge.
    pub overhead_percent: Decimal,
}

impl Card {
    /// The price of one unit of `resource` for one hour.
    pub fn price(&self, resource: Resource) -> Decimal {
        match resource {
            Resource::Cpu => self.cpu,
            Resource::Memory => self.memory,
            Resource::Storage => self.storage,
            Resource::LoadBalancer => self.load_balancer,
        }
    }
}

/// A VAT rate as rating reads it: a percentage from an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct VatRate {
    /// The VatRate's name.
    pub name: String,
    /// When it takes effect.
    pub effective_from: Timestamp,
    /// The percentage added.
    pub percent: Decimal,
}

/// Everything usage is priced with: the rate cards and the VAT rates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tariff {
    /// The rate cards.
    pub cards: Vec<Card>,
    /// The VAT rates (none: no VAT is charged).
    pub vat: Vec<VatRate>,
}

impl Tariff {
    /// Rate cards only, no VAT.
    pub fn of_cards(cards: Vec<Card>) -> Tariff {
        Tariff { cards, vat: Vec::new() }
    }

    /// The parts of `[start, end)` with one VAT rate each (an index into `vat`), in order;
    /// time before the first rate has none; no parts at all when there are no VAT rates.
    pub fn vat_parts(&self, start: Timestamp, end: Timestamp) -> Vec<(Timestamp, Timestamp, Option<usize>)> {
        let mut out = Vec::new();
        // No VAT rate at all (the common case on the hot path): nothing to cut, nothing allocated.
        if self.vat.is_empty() {
            return out;
        }
        let mut at = start;
        while at < end {
            let in_force = (0..self.vat.len())
                .filter(|&i| self.vat[i].effective_from <= at)
                .max_by_key(|&i| self.vat[i].effective_from);
            let next = self.vat.iter().map(|v| v.effective_from).filter(|t| *t > at).min();
            let until = next.map_or(end, |n| n.min(end));
            out.push((at, until, in_force));
            at = until;
        }
        out
    }

    /// Two VAT rates from the same instant: which applies is not decidable.
    pub fn vat_conflict(&self) -> Option<(&str, &str)> {
        self.vat.iter().enumerate().find_map(|(i, a)| {
            self.vat[i + 1..]
                .iter()
                .find(|b| b.effective_from == a.effective_from)
                .map(|b| (a.name.as_str(), b.name.as_str()))
        })
    }
}

/// A quantity of a resource held over `[start, end)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    /// The resource.
    pub resource: Resource,
    /// How much (cores, GiB, or a count).
    pub quantity: Decimal,
    /// From.
    pub start: Timestamp,
    /// Until (exclusive).
    pub end: Timestamp,
}

/// A part of a usage priced with one card.
#[derive(Clone, Debug, PartialEq)]
pub struct Priced {
    /// The part's start.
    pub start: Timestamp,
    /// The part's end (exclusive).
    pub end: Timestamp,
    /// The card's index in the cards given.
    pub card: usize,
    /// Unit-seconds (quantity × seconds), exact.
    pub unit_seconds: Decimal,
    /// The charge before overhead and tax, exact.
    pub amount: Decimal,
}

/// Why usage cannot be priced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    /// Usage from before the first rate card took effect.
    #[error("no rate card is in force at {0}; add one with an earlier effectiveFrom")]
    NoCard(Timestamp),
    /// Cards in two currencies cannot price one usage.
    #[error("rate cards {0} and {1} are in different currencies")]
    Currencies(String, String),
}

/// Exact seconds between two instants, to the nanosecond.
fn seconds(start: Timestamp, end: Timestamp) -> Decimal {
    let nanos = end.as_nanosecond() - start.as_nanosecond();
    Decimal::from_i128_with_scale(nanos.max(0), 9).normalize()
}

/// Prices `usage` with `cards` (any order): one part per card in force during it.
pub fn price(usage: &Usage, cards: &[Card]) -> Result<Vec<Priced>, RatingError> {
    let mut order: Vec<usize> = (0..cards.len()).collect();
    order.sort_by_key(|&i| cards[i].effective_from);
    if let (Some(&a), Some(&b)) =
        (order.first(), order.iter().find(|&&i| cards[i].currency != cards[order[0]].currency))
    {
        return Err(RatingError::Currencies(cards[a].name.clone(), cards[b].name.clone()));
    }
    let mut out = Vec::new();
    let mut at = usage.start;
    while at < usage.end {
        let in_force = order.iter().rev().find(|&&i| cards[i].effective_from <= at).copied();
        let Some(card) = in_force else {
            return Err(RatingError::NoCard(at));
        };
        let next = order.iter().map(|&i| cards[i].effective_from).find(|t| *t > at);
        let end = next.map_or(usage.end, |n| n.min(usage.end));
        let unit_seconds = usage.quantity * seconds(at, end);
        out.push(Priced {
            start: at,
            end,
            card,
            unit_seconds,
            amount: unit_seconds * cards[card].price(usage.resource) / Decimal::from(3600),
        });
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn card(name: &str, from: &str, cpu: Decimal) -> Card {
        Card {
            name: name.into(),
            effective_from: at(from),
            currency: "GBP".into(),
            cpu,
            memory: dec!(0.005),
            storage: dec!(0.0001),
            load_balancer: dec!(0.02),
            overhead_percent: dec!(10),
        }
    }

    #[test]
    fn a_price_change_mid_usage_splits_it_at_that_instant() {
        let cards = [
            card("december", "2026-12-01T00:00:00Z", dec!(0.05)),
            card("november", "2026-11-01T00:00:00Z", dec!(0.04)),
        ];
        let usage = Usage {
            resource: Resource::Cpu,
            quantity: dec!(0.5),
            start: at("2026-11-30T23:00:00Z"),
            end: at("2026-12-01T01:30:00Z"),
        };
        let parts = price(&usage, &cards).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].card, parts[0].end), (1, at("2026-12-01T00:00:00Z")));
        assert_eq!(parts[0].unit_seconds, dec!(1800));
        assert_eq!(parts[0].amount, dec!(0.02));
        assert_eq!((parts[1].card, parts[1].start), (0, at("2026-12-01T00:00:00Z")));
        assert_eq!(parts[1].unit_seconds, dec!(2700));
        assert_eq!(parts[1].amount, dec!(0.0375));
    }

    #[test]
    fn seconds_are_exact_to_the_nanosecond_and_nothing_is_rounded() {
        let cards = [card("one", "2026-01-01T00:00:00Z", dec!(0.0345))];
        let usage = Usage {
            resource: Resource::Cpu,
            quantity: dec!(0.25),
            start: at("2026-11-01T00:00:00.5Z"),
            end: at("2026-11-01T00:00:07.25Z"),
        };
        let parts = price(&usage, &cards).unwrap();
        assert_eq!(parts[0].unit_seconds, dec!(1.6875));
        assert_eq!(parts[0].amount, dec!(1.6875) * dec!(0.0345) / dec!(3600));
    }

    #[test]
    fn vat_applies_from_its_own_date_and_none_before_the_first() {
        let vat = |name: &str, from: &str, percent: Decimal| VatRate {
            name: name.into(),
            effective_from: at(from),
            percent,
        };
        let tariff = Tariff {
            cards: vec![],
            vat: vec![
                vat("new", "2026-11-15T00:00:00Z", dec!(17.5)),
                vat("old", "2026-11-10T00:00:00Z", dec!(20)),
            ],
        };
        let parts = tariff.vat_parts(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        assert_eq!(
            parts,
            vec![
                (at("2026-11-01T00:00:00Z"), at("2026-11-10T00:00:00Z"), None),
                (at("2026-11-10T00:00:00Z"), at("2026-11-15T00:00:00Z"), Some(1)),
                (at("2026-11-15T00:00:00Z"), at("2026-12-01T00:00:00Z"), Some(0)),
            ]
        );
        assert_eq!(tariff.vat_conflict(), None);
        assert!(
            Tariff::default().vat_parts(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")).is_empty()
        );
        let mut twice = tariff.clone();
        twice.vat.push(vat("again", "2026-11-15T00:00:00Z", dec!(5)));
        assert_eq!(twice.vat_conflict(), Some(("new", "again")));
    }

    #[test]
    fn usage_before_any_card_or_across_currencies_is_an_error() {
        let cards = [card("late", "2026-12-01T00:00:00Z", dec!(0.05))];
        let usage = Usage {
            resource: Resource::Memory,
            quantity: dec!(1),
            start: at("2026-11-30T00:00:00Z"),
            end: at("2026-12-02T00:00:00Z"),
        };
        assert_eq!(price(&usage, &cards), Err(RatingError::NoCard(at("2026-11-30T00:00:00Z"))));
        let mut euro = card("euro", "2026-01-01T00:00:00Z", dec!(0.05));
        euro.currency = "EUR".into();
        assert!(matches!(price(&usage, &[cards[0].clone(), euro]), Err(RatingError::Currencies(..))));
        let empty = Usage { end: usage.start, ..usage.clone() };
        assert_eq!(price(&empty, &cards), Ok(vec![]), "nothing held, nothing priced");
    }
}

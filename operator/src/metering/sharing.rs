//! Shared services (pure): what a shared HostedService cost its provider, moved to the tenancies
//! that share it for the time each share was active, by weight (docs/metering.md, "Shared
//! services").
//!
//! The provider's cost of the service (its pods' charges with their overhead) is cut at every
//! instant the set of active shares or their weights changed; each slice is divided among the
//! shares active in it in proportion to their weights. What the consumers' shares come to is moved:
//! one credit line for the provider, one charge line for each consumer. The provider's own share
//! (when it lists itself among the consumers) stays with it; a slice with no active share is not
//! moved at all.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::charges::Grain;
use super::rating::Tariff;

/// One share of a service over a span.
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    /// Who holds it (its `hosted_service` is the service, `<namespace>/<name>`).
    pub grain: Grain,
    /// Its weight.
    pub weight: Decimal,
    /// From.
    pub start: Timestamp,
    /// Until (exclusive).
    pub end: Timestamp,
}

/// What the provider was charged for a service over a span, with one rate card.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// The provider's line grain.
    pub grain: Grain,
    /// The rate card.
    pub card: String,
    /// From.
    pub start: Timestamp,
    /// Until (exclusive).
    pub end: Timestamp,
    /// Exact amount, overhead included.
    pub amount: Decimal,
}

/// What a service's shares moved, exactly: per provider grain and card, each consumer's amount.
pub type Moves = BTreeMap<(Grain, String), BTreeMap<Grain, Decimal>>;

/// VAT on what was moved, exactly, per grain and VAT rate (negative for the provider).
pub type VatMoves = BTreeMap<(Grain, String), Decimal>;

/// What one service's shares came to so far, exactly.
#[derive(Debug, Default)]
struct Tally {
    provider: String,
    consumers: std::collections::BTreeSet<String>,
    cost: Decimal,
    /// Per provider line and card, as the credit lines are rounded.
    paid: BTreeMap<(Grain, String), Decimal>,
    alone: Decimal,
}

/// The shares of every shared service (`<namespace>/<name>`), given before any cost, and what the
/// costs added so far moved: aggregates only, so rating stays in constant memory however many
/// intervals stream through.
#[derive(Debug, Default)]
pub struct Sharing {
    shares: BTreeMap<String, Vec<Share>>,
    moves: Moves,
    vat: VatMoves,
    tallies: BTreeMap<String, Tally>,
}

/// A provider grain's service key.
pub fn service_of(grain: &Grain) -> Option<String> {
    (!grain.hosted_service.is_empty()).then(|| format!("{}/{}", grain.namespace, grain.hosted_service))
}

fn seconds(a: Timestamp, b: Timestamp) -> Decimal {
    Decimal::from_i128_with_scale((b.as_nanosecond() - a.as_nanosecond()).max(0), 9)
}

impl Sharing {
    /// Adds a share (before any cost of its service).
    pub fn share(&mut self, share: Share) {
        if share.end > share.start && share.weight > Decimal::ZERO {
            self.shares.entry(share.grain.hosted_service.clone()).or_default().push(share);
        }
    }

    /// Whether the service of a provider's line has shares.
    pub fn is_shared(&self, grain: &Grain) -> bool {
        !self.shares.is_empty()
            && !grain.hosted_service.is_empty()
            && service_of(grain).is_some_and(|s| self.shares.contains_key(&s))
    }

    /// Adds a provider's cost of its service: each slice divided among the shares active in it.
    pub fn cost(&mut self, cost: &Cost, tariff: &Tariff) {
        let Some(service) = service_of(&cost.grain) else { return };
        let Some(shares) = self.shares.get(&service) else { return };
        if cost.end <= cost.start || cost.amount.is_zero() {
            return;
        }
        let total = seconds(cost.start, cost.end);
        let tally = self.tallies.entry(service).or_default();
        tally.provider.clone_from(&cost.grain.tenancy);
        for (from, until) in slices(cost.start, cost.end, shares) {
            // One party per tenancy, at its weight (two of its namespaces sharing the service count
            // once, its part divided between them); the provider's tenancy keeps its part.
            let mut parties: BTreeMap<&str, (Decimal, Vec<&Share>)> = BTreeMap::new();
            for s in shares.iter().filter(|s| s.start <= from && s.end >= until) {
                let party = parties.entry(s.grain.tenancy.as_str()).or_insert((s.weight, Vec::new()));
                party.0 = party.0.max(s.weight);
                party.1.push(s);
            }
            let weights: Decimal = parties.values().map(|(w, _)| *w).sum();
            let slice = cost.amount * seconds(from, until) / total;
            parties.remove(cost.grain.tenancy.as_str());
            tally.cost += slice;
            tally.alone += slice * Decimal::from(parties.len() + 1);
            if weights.is_zero() {
                continue;
            }
            let each = parties.values().flat_map(|(w, shares)| {
                let n = Decimal::from(shares.len());
                shares.iter().map(move |s| (*s, *w / n))
            });
            for (s, weight) in each {
                let moved = slice * weight / weights;
                *tally.paid.entry((cost.grain.clone(), cost.card.clone())).or_default() += moved;
                tally.consumers.insert(s.grain.tenancy.clone());
                *self
                    .moves
                    .entry((cost.grain.clone(), cost.card.clone()))
                    .or_default()
                    .entry(s.grain.clone())
                    .or_default() += moved;
                for (a, b, rate) in tariff.vat_parts(from, until) {
                    let Some(rate) = rate.map(|r| &tariff.vat[r]) else { continue };
                    let part =
                        moved * seconds(a, b) / seconds(from, until) * rate.percent / Decimal::ONE_HUNDRED;
                    *self.vat.entry((s.grain.clone(), rate.name.clone())).or_default() += part;
                    *self.vat.entry((cost.grain.clone(), rate.name.clone())).or_default() -= part;
                }
            }
        }
    }

    /// What the consumers' shares came to, and the VAT on it.
    pub fn split(self) -> (Moves, VatMoves) {
        (self.moves, self.vat)
    }
}

/// What sharing one service saved over a period: its cost, what its consumers paid of it, and
/// what every party using it would have paid running its own copy of the same allocation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Saving {
    /// The service, `<namespace>/<name>`.
    pub service: String,
    /// The provider's tenancy.
    pub provider: String,
    /// The tenancies that shared it at some time in the period, the provider's excluded.
    pub consumers: Vec<String>,
    /// What it cost, overhead included, before VAT.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// What its consumers paid of that.
    #[serde(with = "rust_decimal::serde::str")]
    pub paid_by_consumers: Decimal,
    /// What the provider and each consumer would have paid for a copy of their own, together.
    #[serde(with = "rust_decimal::serde::str")]
    pub each_alone: Decimal,
    /// The difference.
    #[serde(with = "rust_decimal::serde::str")]
    pub saved: Decimal,
}

impl Sharing {
    /// What sharing each service with shares and costs saved, amounts rounded once to `places`.
    pub fn savings(&self, places: u32) -> Vec<Saving> {
        let round = |d: Decimal| super::money::round(d, places);
        self.tallies
            .iter()
            .map(|(service, t)| Saving {
                service: service.clone(),
                provider: t.provider.clone(),
                consumers: t.consumers.iter().cloned().collect(),
                cost: round(t.cost),
                paid_by_consumers: t.paid.values().map(|p| round(*p)).sum(),
                each_alone: round(t.alone),
                saved: round(t.alone) - round(t.cost),
            })
            .collect()
    }
}

/// `[start, end)` cut at every instant a share began or ended.
fn slices(start: Timestamp, end: Timestamp, shares: &[Share]) -> Vec<(Timestamp, Timestamp)> {
    let mut cuts: Vec<Timestamp> = shares
        .iter()
        .flat_map(|s| [s.start, s.end])
        .filter(|t| *t > start && *t < end)
        .chain([start, end])
        .collect();
    cuts.sort();
    cuts.dedup();
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::rating::VatRate;
    use rust_decimal::dec;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn grain(tenancy: &str, hosted_service: &str) -> Grain {
        Grain {
            tenancy: tenancy.into(),
            namespace: format!("{tenancy}-apps"),
            hosted_service: hosted_service.into(),
            ..Grain::default()
        }
    }

    fn share(tenancy: &str, weight: Decimal, from: &str, to: &str) -> Share {
        Share { grain: grain(tenancy, "north-apps/payroll"), weight, start: at(from), end: at(to) }
    }

    fn day_cost(amount: Decimal) -> Cost {
        Cost {
            grain: grain("north", "payroll"),
            card: "card".into(),
            start: at("2026-11-01T00:00:00Z"),
            end: at("2026-11-02T00:00:00Z"),
            amount,
        }
    }

    fn moved(moves: &Moves, tenancy: &str) -> Decimal {
        moves.values().flat_map(|m| m.iter()).filter(|(g, _)| g.tenancy == tenancy).map(|(_, a)| *a).sum()
    }

    #[test]
    fn each_slice_is_divided_among_the_shares_active_in_it_by_weight() {
        // A day of payroll costing 24.00 (1.00 an hour). South shares all day; west from noon
        // with twice the weight; the provider lists itself (weight 1) all day.
        let cases: Vec<(&str, Vec<Share>, Decimal, Decimal)> = vec![
            (
                "south alone",
                vec![share("south", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")],
                dec!(24),
                dec!(0),
            ),
            (
                "equal, west from noon",
                vec![
                    share("south", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"),
                    share("west", dec!(1), "2026-11-01T12:00:00Z", "2026-11-02T00:00:00Z"),
                ],
                dec!(18),
                dec!(6),
            ),
            (
                "weighted, provider carries a share",
                vec![
                    share("north", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"),
                    share("south", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"),
                    share("west", dec!(2), "2026-11-01T12:00:00Z", "2026-11-02T00:00:00Z"),
                ],
                dec!(6) + dec!(3),
                dec!(6),
            ),
            ("nobody shares: nothing moves", vec![], dec!(0), dec!(0)),
        ];
        for (name, shares, south, west) in cases {
            let mut s = Sharing::default();
            shares.into_iter().for_each(|x| s.share(x));
            s.cost(&day_cost(dec!(24)), &Tariff::default());
            let (moves, vat) = s.split();
            assert_eq!(moved(&moves, "south"), south, "{name}: south");
            assert_eq!(moved(&moves, "west"), west, "{name}: west");
            assert_eq!(moved(&moves, "north"), dec!(0), "{name}: the provider's own share is not moved");
            assert!(vat.is_empty(), "{name}: no VAT rate, no VAT");
        }
    }

    #[test]
    fn a_tenancy_sharing_from_two_namespaces_is_one_party() {
        let mut s = Sharing::default();
        s.share(share("south", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"));
        let mut again = share("south", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z");
        again.grain.namespace = "south-other".into();
        s.share(again);
        s.share(share("west", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"));
        s.cost(&day_cost(dec!(24)), &Tariff::default());
        let saving = &s.savings(2)[0];
        let (moves, _) = s.split();
        assert_eq!(moved(&moves, "south"), dec!(12), "half, split between its two namespaces");
        assert_eq!(moved(&moves, "west"), dec!(12));
        assert_eq!(saving.each_alone, dec!(72.00), "three parties: the provider, south and west");
    }

    #[test]
    fn sharing_saves_a_copy_for_each_party_for_the_time_it_shared() {
        let mut s = Sharing::default();
        // South all day, west from noon: two parties besides the provider for half the day.
        s.share(share("south", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"));
        s.share(share("west", dec!(1), "2026-11-01T12:00:00Z", "2026-11-02T00:00:00Z"));
        s.cost(&day_cost(dec!(24)), &Tariff::default());
        let saving = &s.savings(2)[0];
        assert_eq!(saving.service, "north-apps/payroll");
        assert_eq!(saving.consumers, vec!["south".to_owned(), "west".to_owned()]);
        assert_eq!(saving.cost, dec!(24.00));
        assert_eq!(saving.paid_by_consumers, dec!(24.00), "the provider did not list itself");
        assert_eq!(saving.each_alone, dec!(60.00), "12 h × 2 copies + 12 h × 3 copies, at 1.00 an hour");
        assert_eq!(saving.saved, dec!(36.00));
    }

    #[test]
    fn vat_on_what_moves_goes_with_it() {
        let mut s = Sharing::default();
        s.share(share("south", dec!(1), "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"));
        let tariff = Tariff {
            cards: vec![],
            vat: vec![VatRate {
                name: "std".into(),
                effective_from: at("2026-11-01T12:00:00Z"),
                percent: dec!(20),
            }],
        };
        s.cost(&day_cost(dec!(24)), &tariff);
        let (_, vat) = s.split();
        let of = |t: &str| vat.iter().filter(|((g, _), _)| g.tenancy == t).map(|(_, v)| *v).sum::<Decimal>();
        assert_eq!(of("south"), dec!(2.4), "20% of the 12.00 moved after noon");
        assert_eq!(of("north"), dec!(-2.4));
    }
}

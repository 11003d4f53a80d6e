//! The rater's tests: tables of intervals with known answers.
use super::*;
use crate::ledger::{Attribution, Held, Kind};
use crate::metering::charges::corrections;
use crate::metering::rating::Card;
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
    let mut r =
        Rater::new(from, until, Tariff::of_cards(vec![card("2026-01-01T00:00:00Z", dec!(0.04))]), None)
            .unwrap();
    // 10 hours in October and 10 in November: only November's count.
    r.add(&pod("north", 500, 2, "2026-10-31T14:00:00Z", Some("2026-11-01T10:00:00Z"))).unwrap();
    // Still running: counts until the period's end.
    r.add(&pod("north", 250, 1, "2026-11-30T23:00:00Z", None)).unwrap();
    r.add(&pod("south", 1000, 0, "2026-12-01T00:00:00Z", None)).unwrap();
    let lines = r.finish();
    let cpu = line(&lines, "north", Charge::Cpu);
    assert_eq!((cpu.quantity, cpu.amount), (Some(dec!(5.25)), dec!(0.21)), "0.5 × 10 h + 0.25 × 1 h");
    let memory = line(&lines, "north", Charge::Memory);
    assert_eq!((memory.quantity, memory.amount), (Some(dec!(21)), dec!(0.11)), "21 GiB-h × 0.005 = 0.105");
    assert_eq!(line(&lines, "north", Charge::PlatformOverhead).amount, dec!(0.03), "10% of 0.315");
    assert!(lines.iter().all(|l| l.grain.tenancy != "south"), "south held nothing in November");
}

#[test]
fn a_price_change_mid_period_prices_each_part_with_its_own_card() {
    let (from, until) = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
    let cards = vec![card("2026-01-01T00:00:00Z", dec!(0.04)), card("2026-11-15T00:00:00Z", dec!(0.08))];
    let mut r = Rater::new(from, until, Tariff::of_cards(cards), None).unwrap();
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
    let mut then = Rater::new(from, until, Tariff::of_cards(cards.clone()), close).unwrap();
    let mut now = Rater::new(from, until, Tariff::of_cards(cards), None).unwrap();
    for i in [&ended_late, &learned_late] {
        then.add(i).unwrap();
        now.add(i).unwrap();
    }
    let (then, now) = (then.finish(), now.finish());
    assert_eq!(line(&then, "north", Charge::Cpu).amount, dec!(24), "still open at the close: to month end");
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
    let mut r =
        Rater::new(from, until, Tariff::of_cards(vec![card("2026-11-10T00:00:00Z", dec!(0.04))]), None)
            .unwrap();
    let err = r.add(&pod("north", 1000, 0, "2026-11-05T00:00:00Z", None)).unwrap_err();
    assert!(
        err.to_string().contains("pod/north/2026-11-05") && err.to_string().contains("no rate card"),
        "{err}"
    );
    assert!(matches!(Rater::new(from, until, Tariff::of_cards(vec![]), None), Err(ChargeError::NoCards)));
}

fn vat(name: &str, from: &str, percent: Decimal) -> crate::metering::rating::VatRate {
    crate::metering::rating::VatRate { name: name.into(), effective_from: at(from), percent }
}

fn of(lines: &[ChargeLine], tenancy: &str, charge: Charge) -> Decimal {
    lines.iter().filter(|l| l.grain.tenancy == tenancy && l.charge == charge).map(|l| l.amount).sum()
}

fn november() -> (Timestamp, Timestamp) {
    (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
}

#[test]
fn vat_is_its_own_line_at_the_rate_in_force_on_charges_and_overhead() {
    let (from, until) = november();
    let cards = vec![card("2026-01-01T00:00:00Z", dec!(1))];
    let cases = [
        ("no VAT rate", vec![], dec!(0)),
        // 10 core-hours at 1.00 = 10.00, overhead 1.00: VAT 20% of 11.00.
        ("20% all along", vec![vat("standard", "2026-01-01T00:00:00Z", dec!(20))], dec!(2.20)),
        // Half the hours before the rate took effect.
        ("from mid-usage", vec![vat("standard", "2026-11-10T05:00:00Z", dec!(20))], dec!(1.10)),
        (
            "a change mid-usage",
            vec![
                vat("standard", "2026-01-01T00:00:00Z", dec!(20)),
                vat("reduced", "2026-11-10T05:00:00Z", dec!(5)),
            ],
            dec!(1.10) + dec!(0.28),
        ),
    ];
    for (name, rates, want) in cases {
        let mut r = Rater::new(from, until, Tariff { cards: cards.clone(), vat: rates }, None).unwrap();
        r.add(&pod("north", 1000, 0, "2026-11-10T00:00:00Z", Some("2026-11-10T10:00:00Z"))).unwrap();
        let lines = r.finish();
        assert_eq!(of(&lines, "north", Charge::Cpu), dec!(10.00), "{name}");
        assert_eq!(of(&lines, "north", Charge::Vat), want, "{name}");
    }
    let clash = Tariff {
        cards,
        vat: vec![vat("a", "2026-01-01T00:00:00Z", dec!(20)), vat("b", "2026-01-01T00:00:00Z", dec!(5))],
    };
    assert!(matches!(Rater::new(from, until, clash, None), Err(ChargeError::VatConflict(..))));
}

fn node(cpu_milli: i64, gib: i64, from: &str, to: Option<&str>) -> Interval {
    let mut n = pod("", cpu_milli, gib, from, to);
    n.kind = Kind::Node;
    n.key = format!("node/{from}");
    n.namespace = String::new();
    n.attribution = Attribution::default();
    n
}

#[test]
fn what_nodes_offered_and_no_pod_reserved_is_unallocated_capacity_on_lines_of_its_own() {
    let (from, until) = november();
    // A 4-core, 16 GiB node for 10 hours; pods reserve 1.5 cores and 4 GiB for those hours. North's
    // pod ran from the day before, when no node's capacity was recorded: only the 10 hours count.
    let nodes = [node(4000, 16, "2026-11-10T00:00:00Z", Some("2026-11-10T10:00:00Z"))];
    let tariff = Tariff::of_cards(vec![card("2026-01-01T00:00:00Z", dec!(1))]);
    let mut r = Rater::new(from, until, tariff.clone(), None).unwrap().with_context(&nodes).unwrap();
    r.add(&nodes[0]).unwrap();
    r.add(&pod("north", 1000, 3, "2026-11-09T00:00:00Z", Some("2026-11-10T10:00:00Z"))).unwrap();
    r.add(&pod("south", 500, 1, "2026-11-10T00:00:00Z", Some("2026-11-10T10:00:00Z"))).unwrap();
    let lines = r.finish();
    let cpu = lines.iter().find(|l| l.charge == Charge::UnallocatedCpu).unwrap();
    assert_eq!((cpu.grain.tenancy.as_str(), cpu.quantity, cpu.amount), ("", Some(dec!(25)), dec!(25.00)));
    let memory = lines.iter().find(|l| l.charge == Charge::UnallocatedMemory).unwrap();
    assert_eq!((memory.quantity, memory.amount), (Some(dec!(120)), dec!(0.60)), "120 GiB-h × 0.005");
    assert_eq!(
        of(&lines, "", Charge::PlatformOverhead),
        dec!(0),
        "no overhead on capacity nobody is charged for"
    );
    assert_eq!(of(&lines, "north", Charge::Cpu), dec!(34.00), "tenancies' lines are unchanged");
    let mut without = Rater::new(from, until, tariff, None).unwrap();
    without.add(&nodes[0]).unwrap();
    assert!(without.finish().iter().all(|l| l.charge != Charge::UnallocatedCpu), "nodes must be given first");
}

fn share(kind: Kind, tenancy: &str, weight: i64, from: &str, to: Option<&str>) -> Interval {
    let mut s = pod(tenancy, 0, 0, from, to);
    s.kind = kind;
    s.key = format!("share/{tenancy}/{from}");
    s.attribution.hosted_service = "north-app/payroll".into();
    s.held = Held { share_weight: weight, ..Held::default() };
    s
}

#[test]
fn a_shared_service_is_credited_to_its_provider_and_charged_to_its_consumers_adding_up_exactly() {
    let (from, until) = november();
    let cards = vec![card("2026-01-01T00:00:00Z", dec!(1))];
    // Payroll: 1 core for 10 hours = 10.00 + 1.00 overhead. Three equal shares: the provider's
    // own and two consumers'.
    let shares = [
        share(Kind::ProviderShare, "north", 1, "2026-11-01T00:00:00Z", None),
        share(Kind::Share, "south", 1, "2026-11-01T00:00:00Z", None),
        share(Kind::Share, "west", 1, "2026-11-01T00:00:00Z", None),
    ];
    let tariff = Tariff { cards, vat: vec![vat("standard", "2026-01-01T00:00:00Z", dec!(20))] };
    let mut r = Rater::new(from, until, tariff, None).unwrap().with_context(&shares).unwrap();
    let mut payroll = pod("north", 1000, 0, "2026-11-10T00:00:00Z", Some("2026-11-10T10:00:00Z"));
    payroll.attribution.hosted_service = "payroll".into();
    r.add(&payroll).unwrap();
    // Given again in the stream, they count once.
    r.add(&shares[1]).unwrap();
    // Someone else's service is not split.
    r.add(&pod("east", 1000, 0, "2026-11-10T00:00:00Z", Some("2026-11-10T10:00:00Z"))).unwrap();
    let lines = r.finish();
    let credit = of(&lines, "north", Charge::SharedServiceCredit);
    assert_eq!(credit, dec!(-7.33), "two thirds of 11.00, rounded once");
    let (south, west) =
        (of(&lines, "south", Charge::SharedService), of(&lines, "west", Charge::SharedService));
    assert_eq!(south + west, -credit, "the consumers' lines add up to the credit");
    assert_eq!((south, west), (dec!(3.67), dec!(3.66)), "largest remainder, earlier first on a tie");
    assert_eq!(of(&lines, "south", Charge::Vat), dec!(0.73), "VAT follows what moved: 20% of 3.666…");
    assert_eq!(of(&lines, "north", Charge::Vat), dec!(0.73), "20% of 11.00 less 2 × 0.733…");
    assert_eq!(of(&lines, "east", Charge::SharedServiceCredit), dec!(0));
    let consumer = lines.iter().find(|l| l.charge == Charge::SharedService).unwrap();
    assert_eq!(consumer.grain.hosted_service, "north-app/payroll", "the consumer's line names the service");
}

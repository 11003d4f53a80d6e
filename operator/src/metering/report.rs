//! A period's spend for people (pure): charge lines (`charges`) summed per group. Amounts are sums
//! of charge lines, each rounded once, so every report of a period adds up to the same total
//! whatever it is grouped by.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use super::charges::{Charge, ChargeLine};

/// The group of the lines charged to no tenancy, whatever the grouping.
pub const UNALLOCATED: &str = "(unallocated capacity)";

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

    /// The word for it.
    pub fn word(self) -> &'static str {
        match self {
            By::Tenancy => "tenancy",
            By::Organisation => "organisation",
            By::Sector => "sector",
            By::CostCentre => "cost-centre",
            By::Service => "service",
        }
    }

    /// The group a charge line belongs to, and the organisation's name where the group has one
    /// (the same in every report: the month's, the year's).
    pub fn group(self, l: &ChargeLine) -> (String, String) {
        let g = &l.grain;
        if g.tenancy.is_empty() {
            // What nodes offered and no tenancy reserved: charged to nobody, shown apart.
            return (UNALLOCATED.to_owned(), String::new());
        }
        let (group, name) = match self {
            By::Tenancy => (g.tenancy.clone(), g.organisation_name.clone()),
            By::Organisation => (g.organisation.clone(), g.organisation_name.clone()),
            By::Sector => (g.sector.clone(), String::new()),
            // Cost centres are an organisation's own codes: two councils may both use FIN-001.
            By::CostCentre => (format!("{}/{}", g.organisation, g.cost_centre), g.organisation_name.clone()),
            By::Service if g.hosted_service.is_empty() => {
                (format!("{} (not in a hosted service)", g.tenancy), g.organisation_name.clone())
            }
            // A consumer's share names the provider's service as `namespace/name` already.
            By::Service if g.hosted_service.contains('/') => (g.hosted_service.clone(), String::new()),
            By::Service => (format!("{}/{}", g.namespace, g.hosted_service), g.organisation_name.clone()),
        };
        match group.is_empty() {
            // Recorded before its tenancy had an organisation id.
            true => (format!("({} not recorded)", self.word()), name),
            false => (group, name),
        }
    }
}

/// One line of a report: a group's charge for one thing.
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
    /// The sum of the charge lines, each rounded to the currency's minor unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// For corrections: the earlier closed period they correct.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub corrects: String,
}

/// The spend of a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The period, `YYYY-MM`.
    pub period: String,
    /// From (inclusive).
    pub from: Timestamp,
    /// Until (exclusive): the period's end, or now for a period still running.
    pub until: Timestamp,
    /// Whether the period is closed (its lines never change).
    pub closed: bool,
    /// How lines are grouped.
    pub by: By,
    /// The currency of every amount.
    pub currency: String,
    /// Every line, by group, then corrections, then charge.
    pub lines: Vec<Line>,
    /// The sum of the lines.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

/// Where a report's lines come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Period<'a> {
    /// `YYYY-MM`.
    pub name: &'a str,
    /// From.
    pub from: Timestamp,
    /// Until.
    pub until: Timestamp,
    /// Whether it is closed.
    pub closed: bool,
    /// The currency.
    pub currency: &'a str,
}

/// A report line's group, the period it corrects (or empty) and its charge.
type GroupKey = (String, String, Charge);

/// The charge lines summed per group (and, apart, per corrected period) and charge.
pub fn summarise(period: Period<'_>, lines: &[ChargeLine], by: By) -> Report {
    let mut groups: BTreeMap<GroupKey, (String, Option<Decimal>, Decimal)> = BTreeMap::new();
    for l in lines {
        let (group, name) = by.group(l);
        let g = groups.entry((group, l.corrects.clone(), l.charge)).or_insert((name, None, Decimal::ZERO));
        if let Some(q) = l.quantity {
            g.1 = Some(g.1.unwrap_or_default() + q);
        }
        g.2 += l.amount;
    }
    let lines: Vec<Line> = groups
        .into_iter()
        .map(|((group, corrects, charge), (organisation_name, quantity, amount))| Line {
            group,
            organisation_name,
            charge,
            quantity: quantity.map(|q| q.normalize()),
            amount,
            corrects,
        })
        .collect();
    let total = lines.iter().map(|l| l.amount).sum();
    Report {
        period: period.name.to_owned(),
        from: period.from,
        until: period.until,
        closed: period.closed,
        by,
        currency: period.currency.to_owned(),
        lines,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::charges::Grain;
    use rust_decimal::dec;

    fn line(tenancy: &str, sector: &str, charge: Charge, amount: Decimal, corrects: &str) -> ChargeLine {
        ChargeLine {
            grain: Grain {
                tenancy: tenancy.into(),
                namespace: format!("{tenancy}-app"),
                organisation: format!("{tenancy}-org"),
                organisation_name: format!("{tenancy} council"),
                sector: sector.into(),
                cost_centre: "CC".into(),
                ..Grain::default()
            },
            charge,
            quantity: (charge != Charge::PlatformOverhead).then_some(dec!(1.5)),
            amount,
            rate_card: "standard".into(),
            corrects: corrects.into(),
        }
    }

    #[test]
    fn every_grouping_adds_up_to_the_same_total_and_corrections_stay_apart() {
        let lines = [
            line("north", "local-government", Charge::Cpu, dec!(1.11), ""),
            line("north", "local-government", Charge::PlatformOverhead, dec!(0.11), ""),
            line("south", "local-government", Charge::Cpu, dec!(2.22), ""),
            line("trust", "health", Charge::Cpu, dec!(3.33), ""),
            line("north", "local-government", Charge::Cpu, dec!(-0.50), "2026-10"),
        ];
        let at: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let period = Period { name: "2026-11", from: at, until: at, closed: false, currency: "GBP" };
        let by_sector = summarise(period.clone(), &lines, By::Sector);
        let by_tenancy = summarise(period, &lines, By::Tenancy);
        assert_eq!((by_sector.total, by_tenancy.total), (dec!(6.27), dec!(6.27)));
        let lg_cpu = by_sector
            .lines
            .iter()
            .find(|l| l.group == "local-government" && l.charge == Charge::Cpu)
            .unwrap();
        assert_eq!((lg_cpu.amount, lg_cpu.quantity), (dec!(3.33), Some(dec!(3))));
        let fix = by_tenancy.lines.iter().find(|l| l.corrects == "2026-10").unwrap();
        assert_eq!((fix.group.as_str(), fix.amount), ("north", dec!(-0.50)));
    }
}

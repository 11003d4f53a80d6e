//! A year's spend (pure): each month's charge lines summed per group (sector, organisation, ...),
//! month by month, with the year's total per group; and the shared services each group provides
//! and uses. Rendered as a table, JSON, CSV or an SVG chart (`chart`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde::Serialize;

use super::charges::ChargeLine;
use super::report::By;

/// A shared service and who uses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shared {
    /// `namespace/name`.
    pub service: String,
    /// The providing group (its sector, organisation, ...).
    pub provider: String,
    /// The groups using it through an active subscription.
    pub consumers: Vec<String>,
}

/// One group's spend over the year.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The group.
    pub group: String,
    /// Its spend in each month, January first (months not reported are zero).
    #[serde(with = "amounts")]
    pub months: Vec<Decimal>,
    /// The year's total.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

mod amounts {
    use rust_decimal::Decimal;
    use serde::Serializer;
    use serde::ser::SerializeSeq;

    pub fn serialize<S: Serializer>(v: &[Decimal], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for d in v {
            seq.serialize_element(&d.to_string())?;
        }
        seq.end()
    }
}

/// A year's spend.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Annual {
    /// The year.
    pub year: i16,
    /// How rows are grouped.
    pub by: By,
    /// The currency.
    pub currency: String,
    /// The months reported (`YYYY-MM`), and whether each is closed.
    pub months: Vec<(String, bool)>,
    /// One row per group, largest spend first.
    pub rows: Vec<Row>,
    /// Each month's total.
    #[serde(with = "amounts")]
    pub month_totals: Vec<Decimal>,
    /// The year's total.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// The shared services, by provider.
    pub shared: Vec<Shared>,
}

/// The group a line belongs to when grouping `by`.
pub fn group_of(by: By, l: &ChargeLine) -> String {
    by.group(l).0
}

/// Builds the year from each reported month's lines (`months[i]` is month i + 1; `None` where
/// nothing is reported).
pub fn build(
    year: i16,
    by: By,
    currency: &str,
    months: &[Option<(String, bool, Vec<ChargeLine>)>],
    shared: Vec<Shared>,
) -> Annual {
    let mut sums: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for (i, month) in months.iter().enumerate() {
        for l in month.iter().flat_map(|(_, _, lines)| lines) {
            sums.entry(group_of(by, l)).or_insert_with(|| vec![Decimal::ZERO; 12])[i] += l.amount;
        }
    }
    let mut rows: Vec<Row> =
        sums.into_iter().map(|(group, months)| Row { total: months.iter().sum(), group, months }).collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.group.cmp(&b.group)));
    let month_totals: Vec<Decimal> = (0..12).map(|i| rows.iter().map(|r| r.months[i]).sum()).collect();
    Annual {
        year,
        by,
        currency: currency.to_owned(),
        months: months.iter().flatten().map(|(name, closed, _)| (name.clone(), *closed)).collect(),
        total: month_totals.iter().sum(),
        rows,
        month_totals,
        shared,
    }
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The year as a table.
pub fn table(a: &Annual) -> String {
    let mut out = format!("Spend in {} by {}, in {} (", a.year, a.by.word(), a.currency);
    let states: Vec<String> = a
        .months
        .iter()
        .map(|(m, closed)| format!("{m} {}", if *closed { "closed" } else { "open" }))
        .collect();
    out.push_str(&states.join(", "));
    out.push_str(")\n\n");
    let width = a.rows.iter().map(|r| r.group.len()).chain([5]).max().unwrap_or(5);
    let _ = write!(out, "{:<width$}", "GROUP");
    for m in MONTHS {
        let _ = write!(out, "  {m:>9}");
    }
    let _ = writeln!(out, "  {:>11}", "TOTAL");
    let mut line = |name: &str, months: &[Decimal], total: Decimal| {
        let _ = write!(out, "{name:<width$}");
        for m in months {
            let _ = write!(out, "  {:>9}", m.to_string());
        }
        let _ = writeln!(out, "  {:>11}", total.to_string());
    };
    for r in &a.rows {
        line(&r.group, &r.months, r.total);
    }
    line("Total", &a.month_totals, a.total);
    if !a.shared.is_empty() {
        out.push_str("\nShared services (provider: service, used by)\n");
        for s in &a.shared {
            let _ = writeln!(out, "  {}: {}, used by {}", s.provider, s.service, s.consumers.join(", "));
        }
    }
    out
}

/// The year as CSV: a row per group, a column per month.
pub fn csv(a: &Annual) -> String {
    let mut out = String::from("group");
    for m in 1..=12 {
        let _ = write!(out, ",{}-{m:02}", a.year);
    }
    out.push_str(",total,currency\n");
    for r in &a.rows {
        let group = if r.group.contains([',', '"']) {
            format!("\"{}\"", r.group.replace('"', "\"\""))
        } else {
            r.group.clone()
        };
        out.push_str(&group);
        for m in &r.months {
            let _ = write!(out, ",{m}");
        }
        let _ = writeln!(out, ",{},{}", r.total, a.currency);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::charges::{Charge, Grain};
    use rust_decimal::dec;

    fn line(sector: &str, org: &str, amount: Decimal) -> ChargeLine {
        ChargeLine {
            grain: Grain {
                tenancy: org.to_lowercase(),
                sector: sector.into(),
                organisation_name: org.into(),
                ..Grain::default()
            },
            charge: Charge::Cpu,
            quantity: Some(dec!(1)),
            amount,
            rate_card: "c".into(),
            corrects: String::new(),
        }
    }

    #[test]
    fn months_sum_per_group_and_the_totals_agree() {
        let mut months: Vec<Option<(String, bool, Vec<ChargeLine>)>> = vec![None; 12];
        months[9] = Some((
            "2026-10".into(),
            true,
            vec![line("health", "Trust", dec!(10.00)), line("local-government", "North", dec!(5.50))],
        ));
        months[10] = Some(("2026-11".into(), false, vec![line("local-government", "North", dec!(7.25))]));
        let shared = vec![Shared {
            service: "n/payroll".into(),
            provider: "local-government".into(),
            consumers: vec!["health".into()],
        }];
        let a = build(2026, By::Sector, "GBP", &months, shared);
        assert_eq!(a.rows[0].group, "local-government", "largest first");
        assert_eq!(
            (a.rows[0].months[9], a.rows[0].months[10], a.rows[0].total),
            (dec!(5.50), dec!(7.25), dec!(12.75))
        );
        assert_eq!((a.month_totals[9], a.total), (dec!(15.50), dec!(22.75)));
        let t = table(&a);
        assert!(
            t.contains("2026-10 closed, 2026-11 open")
                && t.contains("local-government: n/payroll, used by health"),
            "{t}"
        );
        let c = csv(&a);
        assert!(
            c.starts_with("group,2026-01,") && c.contains("\nhealth,0,0,0,0,0,0,0,0,0,10.00,0,0,10.00,GBP\n"),
            "{c}"
        );
        assert_eq!(
            build(2026, By::Organisation, "GBP", &months, vec![]).rows[0].group,
            "(organisation not recorded)"
        );
    }
}

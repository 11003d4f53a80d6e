//! `commons report`: a period's spend from the ledger, priced with the cluster's rate cards, as a
//! table for people or JSON or CSV for tools.

use std::fmt::Write as _;
use std::sync::Arc;

use commons_crds::rate_card::RateCard;
use futures::StreamExt;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::metering::rating::Card;
use crate::metering::report::{Acc, By, Report};
use crate::ratecard::{Standing, standings};

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// The format a command-line word names.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// A calendar month in UTC, `YYYY-MM`: its first instant and the first of the next.
pub fn month(period: &str) -> Result<(Timestamp, Timestamp)> {
    let bad =
        || Error::Invalid(format!("--period {period:?}: expected a month as YYYY-MM, for example 2026-11"));
    let (y, m) = period.split_once('-').ok_or_else(bad)?;
    let (y, m): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if y < 1970 || !(1..=12).contains(&m) || period.len() != 7 {
        return Err(bad());
    }
    let first = Date::new(y, m, 1).map_err(|_| bad())?;
    let next = first.checked_add(1.month()).map_err(|_| bad())?;
    let at = |d: Date| d.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).map_err(|_| bad());
    Ok((at(first)?, at(next)?))
}

/// The cards rating can use: every card but those in conflict (the RateCard controller reports
/// why on each).
pub fn usable_cards(cards: &[Arc<RateCard>]) -> Vec<Card> {
    let standing = standings(cards, Timestamp::now());
    cards
        .iter()
        .filter(|c| !matches!(standing.get(&c.name_any()), Some(Standing::Conflict(_)) | None))
        .map(|c| Card {
            name: c.name_any(),
            effective_from: c.spec.effective_from.0,
            currency: c.spec.currency.clone(),
            cpu: c.spec.prices.cpu_core_hour.value(),
            memory: c.spec.prices.memory_gib_hour.value(),
            storage: c.spec.prices.storage_gib_hour.value(),
            load_balancer: c.spec.prices.load_balancer_hour.value(),
            overhead_percent: c.spec.platform_overhead_percent.value(),
        })
        .collect()
}

/// Makes the report of `period` (`YYYY-MM`) grouped `by`, from the ledger at `ledger_url` and
/// the rate cards in the cluster in KUBECONFIG. A month still running is reported until now.
pub async fn report(period: &str, by: By, ledger_url: &str) -> Result<Report> {
    let (from, end) = month(period)?;
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap_or(end);
    let until = end.min(now);
    if until <= from {
        return Err(Error::Invalid(format!("--period {period}: the month has not begun")));
    }
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let cards: Vec<Arc<RateCard>> = Api::<RateCard>::all(client)
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube { context: "listing ratecards".into(), source })?
        .items
        .into_iter()
        .map(Arc::new)
        .collect();
    let mut acc = Acc::new(from, until, by, usable_cards(&cards))?;
    let ledger = Ledger::open_to_read(ledger_url)?;
    let mut intervals = ledger.overlapping(from.as_millisecond(), until.as_millisecond());
    while let Some(interval) = intervals.next().await {
        acc.add(&interval?)?;
    }
    drop(intervals);
    ledger.close().await;
    Ok(acc.finish())
}

/// Runs the command.
pub async fn run(period: &str, by: &str, format: &str, ledger_url: &str) -> Result<String> {
    let by = By::parse(by).ok_or_else(|| {
        Error::Invalid(format!("--by {by:?}: expected tenancy, organisation, sector, cost-centre or service"))
    })?;
    let format = Format::parse(format)
        .ok_or_else(|| Error::Invalid(format!("--format {format:?}: expected table, json or csv")))?;
    let r = report(period, by, ledger_url).await?;
    Ok(render(&r, format))
}

/// The report in `format`.
pub fn render(r: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default(),
        Format::Csv => {
            let mut out = String::from("group,organisation_name,charge,quantity,unit,amount,currency\n");
            for l in &r.lines {
                let quantity = l.quantity.map(|q| q.to_string()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    csv(&l.group),
                    csv(&l.organisation_name),
                    l.charge,
                    quantity,
                    l.charge.unit(),
                    l.amount,
                    r.currency
                );
            }
            out
        }
        Format::Table => {
            let rows: Vec<[String; 5]> = r
                .lines
                .iter()
                .map(|l| {
                    let quantity = l
                        .quantity
                        .map(|q| format!("{} {}", q.round_dp(3), l.charge.unit()))
                        .unwrap_or_default();
                    [
                        l.group.clone(),
                        l.organisation_name.clone(),
                        l.charge.to_string(),
                        quantity,
                        l.amount.to_string(),
                    ]
                })
                .collect();
            let head = ["GROUP", "ORGANISATION", "CHARGE", "QUANTITY", "AMOUNT"];
            let widths: Vec<usize> = (0..5)
                .map(|i| rows.iter().map(|r| r[i].len()).chain([head[i].len()]).max().unwrap_or(0))
                .collect();
            let mut out = format!(
                "Spend from {} until {}, by {}, in {}\n\n",
                r.from,
                r.until,
                serde_json::to_value(r.by)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                r.currency
            );
            for row in std::iter::once(head.map(str::to_owned)).chain(rows) {
                let cells: Vec<String> = row
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i >= 3 {
                            format!("{c:>w$}", w = widths[i])
                        } else {
                            format!("{c:<w$}", w = widths[i])
                        }
                    })
                    .collect();
                let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            }
            let _ = writeln!(out, "\nTotal: {} {}", r.total, r.currency);
            out
        }
    }
}

/// A CSV field, quoted when it must be.
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_a_calendar_month_in_utc() {
        let (from, until) = month("2026-11").unwrap();
        assert_eq!(
            (from.to_string(), until.to_string()),
            ("2026-11-01T00:00:00Z".into(), "2026-12-01T00:00:00Z".into())
        );
        let (_, until) = month("2026-12").unwrap();
        assert_eq!(until.to_string(), "2027-01-01T00:00:00Z");
        for bad in ["2026-13", "2026-1", "november", "2026-00", ""] {
            let err = month(bad).unwrap_err().to_string();
            assert!(err.contains("--period") && err.contains("YYYY-MM"), "{bad}: {err}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv("Leeds, City of"), "\"Leeds, City of\"");
        assert_eq!(csv("plain"), "plain");
    }
}

//! `commons report`: a period's spend from the ledger, priced with the cluster's rate cards, as a
//! table for people or JSON or CSV for tools.

use std::fmt::Write as _;
use std::sync::Arc;

use commons_crds::VatRate;
use commons_crds::rate_card::RateCard;
use jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::metering::charges::ChargeLine;
use crate::metering::focus;
use crate::metering::periods::{self, Month};
use crate::metering::rating::{self, Card, Tariff};
use crate::metering::report::{self as summary, By, Report};
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

/// The VAT rates as rating reads them.
pub fn vat_rates(rates: &[VatRate]) -> Vec<rating::VatRate> {
    rates
        .iter()
        .map(|v| rating::VatRate {
            name: v.name_any(),
            effective_from: v.spec.effective_from.0,
            percent: v.spec.percent.value(),
        })
        .collect()
}

/// The rate cards and VAT rates in the cluster in KUBECONFIG that rating can use.
pub async fn cluster_tariff() -> Result<Tariff> {
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    tariff_in(&client).await
}

/// The rate cards and VAT rates in the cluster that rating can use.
pub async fn tariff_in(client: &Client) -> Result<Tariff> {
    let cards: Vec<Arc<RateCard>> = Api::<RateCard>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube { context: "listing ratecards".into(), source })?
        .items
        .into_iter()
        .map(Arc::new)
        .collect();
    let vat = Api::<VatRate>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube { context: "listing vatrates".into(), source })?
        .items;
    Ok(Tariff { cards: usable_cards(&cards), vat: vat_rates(&vat) })
}

/// The cluster's rate cards and VAT rates as the shared reflectors hold them: what the API prices
/// with, without asking the apiserver on every call.
#[derive(Clone)]
pub struct StoredTariff {
    /// Every RateCard.
    pub cards: kube::runtime::reflector::Store<RateCard>,
    /// Every VatRate.
    pub vat: kube::runtime::reflector::Store<VatRate>,
}

impl std::fmt::Debug for StoredTariff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTariff").field("cards", &self.cards.len()).finish_non_exhaustive()
    }
}

impl StoredTariff {
    /// The tariff now, once both stores have listed.
    pub async fn now(&self) -> Result<Tariff> {
        crate::watch::synced(&[&self.cards]).await?;
        crate::watch::synced(&[&self.vat]).await?;
        let vat: Vec<VatRate> = self.vat.state().iter().map(|v| v.as_ref().clone()).collect();
        Ok(Tariff { cards: usable_cards(&self.cards.state()), vat: vat_rates(&vat) })
    }
}

/// A period's charge lines and what they were priced with.
#[derive(Debug)]
pub struct Loaded {
    /// The month.
    pub month: Month,
    /// Until when it is charged (its end, or now while it runs).
    pub until: Timestamp,
    /// Its charge lines (an open month's with the corrections due).
    pub lines: Vec<ChargeLine>,
    /// The cards and VAT rates that priced them.
    pub tariff: Tariff,
    /// Their currency.
    pub currency: String,
    /// Whether the month is closed.
    pub closed: bool,
}

/// A period's charge lines from the ledger at `ledger_url`: a closed period's as stored (with the
/// cards it closed with), an open one's priced now with the cluster's rate cards (a month still
/// running, until now).
pub async fn load(period: &str, ledger_url: &str) -> Result<Loaded> {
    let ledger = Ledger::open_to_read(ledger_url)?;
    let loaded = load_from(&ledger, period, cluster_tariff(), None).await;
    ledger.close().await;
    loaded
}

/// A period's charge lines from `ledger`: a closed period's as stored (with the cards it closed
/// with), an open one's priced now with `open_tariff` (a month still running, until now).
pub async fn load_from(
    ledger: &Ledger,
    period: &str,
    open_tariff: impl std::future::Future<Output = Result<Tariff>>,
    as_of: Option<Timestamp>,
) -> Result<Loaded> {
    let month = Month::parse(period)?;
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap_or(month.until);
    let until = month.until.min(now);
    if until <= month.from {
        return Err(Error::Invalid(format!("--period {period}: the month has not begun")));
    }
    let until = match as_of {
        Some(at) if at <= month.from => {
            return Err(Error::AsOf(format!("{at}: before {period} began")));
        }
        Some(at) => until.min(at),
        None => until,
    };
    let closed = ledger.is_closed(period).await?;
    if closed && until < month.until {
        return Err(Error::AsOf(format!(
            "{until}: {period} is closed, and its figures are final and whole: leave it out"
        )));
    }
    let tariff = if closed { periods::closed_tariff(ledger, period).await? } else { open_tariff.await? };
    let (lines, record) = periods::lines(ledger, &month, until, &tariff).await?;
    let currency = match &record {
        Some(p) => p.currency.clone(),
        None => tariff.cards.first().map(|c| c.currency.clone()).unwrap_or_default(),
    };
    let until = record.as_ref().map_or(until, |_| month.until);
    Ok(Loaded { month, until, lines, tariff, currency, closed: record.is_some() })
}

/// Makes the report of `period` (`YYYY-MM`) grouped `by` (see [`load`]).
pub async fn report(period: &str, by: By, ledger_url: &str) -> Result<Report> {
    let l = load(period, ledger_url).await?;
    let p = summary::Period {
        name: period,
        from: l.month.from,
        until: l.until,
        closed: l.closed,
        currency: &l.currency,
    };
    Ok(summary::summarise(p, &l.lines, by))
}

/// Runs the command.
pub async fn run(period: &str, by: &str, format: &str, ledger_url: &str) -> Result<String> {
    let by = By::parse(by).ok_or_else(|| {
        Error::Invalid(format!("--by {by:?}: expected tenancy, organisation, sector, cost-centre or service"))
    })?;
    if format == "focus" {
        let l = load(period, ledger_url).await?;
        let mut out = Vec::new();
        focus::write(&mut out, &l.month, &l.lines, &l.tariff.cards, &l.currency)
            .map_err(|source| Error::Io { action: "cannot write", path: "FOCUS export".into(), source })?;
        return Ok(String::from_utf8_lossy(&out).into_owned());
    }
    let format = Format::parse(format).ok_or_else(|| match format {
        "svg" => Error::Invalid("--format svg draws a year: use --year".into()),
        _ => Error::Invalid(format!("--format {format:?}: expected table, json, csv or focus")),
    })?;
    let r = report(period, by, ledger_url).await?;
    Ok(render(&r, format))
}

/// The CSV report's header row.
pub const CSV_HEADER: &str = "group,organisation_name,charge,quantity,unit,amount,currency,corrects\n";

/// The CSV rows of `lines` (all of a report's, or a slice of them).
pub fn csv_rows(out: &mut String, lines: &[crate::metering::report::Line], currency: &str) {
    for l in lines {
        let quantity = l.quantity.map(|q| q.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            csv(&l.group),
            csv(&l.organisation_name),
            l.charge,
            quantity,
            l.charge.unit(),
            l.amount,
            currency,
            l.corrects
        );
    }
}

/// The report in `format`.
pub fn render(r: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default(),
        Format::Csv => {
            let mut out = String::from(CSV_HEADER);
            csv_rows(&mut out, &r.lines, &r.currency);
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
                    let charge = match l.corrects.as_str() {
                        "" => l.charge.to_string(),
                        p => format!("{} (correction for {p})", l.charge),
                    };
                    [l.group.clone(), l.organisation_name.clone(), charge, quantity, l.amount.to_string()]
                })
                .collect();
            let head = ["GROUP", "ORGANISATION", "CHARGE", "QUANTITY", "AMOUNT"];
            let widths: Vec<usize> = (0..5)
                .map(|i| rows.iter().map(|r| r[i].len()).chain([head[i].len()]).max().unwrap_or(0))
                .collect();
            let standing = if r.closed { "closed" } else { "open" };
            let mut out = format!(
                "Spend in {} ({standing}) from {} until {}, by {}, in {}\n\n",
                r.period,
                r.from,
                r.until,
                r.by.word(),
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
pub(crate) fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv("Leeds, City of"), "\"Leeds, City of\"");
        assert_eq!(csv("plain"), "plain");
    }
}

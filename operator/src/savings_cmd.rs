//! `commons report --period P --savings`: for each shared service, what it cost, what its
//! consumers paid of it, and what the provider and each consumer would have paid running a copy
//! of the same allocation of their own: the evidence of what sharing saves.

use std::fmt::Write as _;

use jiff::Timestamp;
use kube::Client;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::metering::periods::{self, Month};
use crate::metering::sharing::Saving;
use crate::report_cmd::{Format, csv, tariff_in};

/// What sharing saved in `period`, from `ledger`: a closed month's as the ledger was known when it
/// closed, with the tariff it closed with; an open month's until now, priced with `open_tariff`
/// (the cluster's rate cards). Also the currency, and whether the month is closed (its figures final).
pub async fn savings_in(
    open_tariff: impl std::future::Future<Output = Result<crate::metering::rating::Tariff>>,
    ledger: &Ledger,
    period: &str,
) -> Result<(Vec<Saving>, String, bool)> {
    let month = Month::parse(period)?;
    let now = Timestamp::now();
    let until = month.until.min(now);
    if until <= month.from {
        return Err(Error::Invalid(format!("--period {period}: the month has not begun")));
    }
    let closed = ledger.closed_periods().await?.into_iter().find(|p| p.period == month.name);
    let (savings, tariff) = match &closed {
        Some(p) => {
            let tariff = periods::closed_tariff(ledger, period).await?;
            (periods::savings(ledger, &month, month.until, &tariff, Some(p.closed_ms)).await?, tariff)
        }
        None => {
            let tariff = open_tariff.await?;
            (periods::savings(ledger, &month, until, &tariff, None).await?, tariff)
        }
    };
    let currency = tariff.cards.first().map(|c| c.currency.clone()).unwrap_or_default();
    Ok((savings, currency, closed.is_some()))
}

/// What sharing saved in `period`, and the currency.
pub async fn savings(period: &str, ledger_url: &str) -> Result<(Vec<Saving>, String)> {
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let ledger = Ledger::open_to_read(ledger_url)?;
    let result = savings_in(tariff_in(&client), &ledger, period).await;
    ledger.close().await;
    result.map(|(s, currency, _)| (s, currency))
}

pub async fn run(period: &str, format: &str, ledger_url: &str) -> Result<String> {
    let format = Format::parse(format).ok_or_else(|| {
        Error::Invalid(format!("--format {format:?}: with --savings, expected table, json or csv"))
    })?;
    let (savings, currency) = savings(period, ledger_url).await?;
    Ok(render(period, &savings, &currency, format))
}

/// The savings in `format`.
pub fn render(period: &str, savings: &[Saving], currency: &str, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(&serde_json::json!({
            "period": period, "currency": currency, "services": savings,
            "saved": savings.iter().map(|s| s.saved).sum::<Decimal>().to_string(),
        }))
        .unwrap_or_default(),
        Format::Csv => {
            let mut out =
                String::from("service,provider,consumers,cost,paid_by_consumers,each_alone,saved,currency\n");
            for s in savings {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{currency}",
                    csv(&s.service),
                    csv(&s.provider),
                    csv(&s.consumers.join(" ")),
                    s.cost,
                    s.paid_by_consumers,
                    s.each_alone,
                    s.saved
                );
            }
            out
        }
        Format::Table => {
            if savings.is_empty() {
                return format!("No service was shared in {period}.\n");
            }
            let mut out = format!("What sharing saved in {period} ({currency})\n");
            let _ = writeln!(
                out,
                "{:<36} {:<22} {:>12} {:>14} {:>14} {:>12}  consumers",
                "service", "provider", "cost", "consumers paid", "each alone", "saved"
            );
            for s in savings {
                let _ = writeln!(
                    out,
                    "{:<36} {:<22} {:>12} {:>14} {:>14} {:>12}  {}",
                    s.service,
                    s.provider,
                    s.cost,
                    s.paid_by_consumers,
                    s.each_alone,
                    s.saved,
                    s.consumers.join(", ")
                );
            }
            let saved: Decimal = savings.iter().map(|s| s.saved).sum();
            let _ =
                writeln!(out, "{:<36} {:<22} {:>12} {:>14} {:>14} {:>12}", "total", "", "", "", "", saved);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn every_format_names_each_service_and_the_total_saved() {
        let s = Saving {
            service: "north-apps/payroll".into(),
            provider: "north".into(),
            consumers: vec!["south".into(), "west, city of".into()],
            cost: dec!(24.00),
            paid_by_consumers: dec!(16.00),
            each_alone: dec!(72.00),
            saved: dec!(48.00),
        };
        let table = render("2026-11", std::slice::from_ref(&s), "GBP", Format::Table);
        assert!(table.contains("north-apps/payroll") && table.contains("48.00"), "{table}");
        let csv = render("2026-11", std::slice::from_ref(&s), "GBP", Format::Csv);
        assert!(
            csv.lines().nth(1).unwrap().contains(",\"south west, city of\",24.00,16.00,72.00,48.00,GBP"),
            "{csv}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render("2026-11", &[s], "GBP", Format::Json)).unwrap();
        assert_eq!(json["saved"], "48.00");
        assert_eq!(render("2026-11", &[], "GBP", Format::Table), "No service was shared in 2026-11.\n");
    }
}

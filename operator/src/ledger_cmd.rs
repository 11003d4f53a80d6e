//! `commons ledger`: close a period, verify closed periods against the raw intervals, list them.

use std::fmt::Write as _;

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::metering::periods::{self, Month};
use crate::report_cmd::cluster_tariff;

/// `commons ledger close PERIOD`: closes a month with the cluster's rate cards and VAT rates.
pub async fn close(period: &str, ledger_url: &str) -> Result<String> {
    let month = Month::parse(period)?;
    let tariff = cluster_tariff().await?;
    let ledger = Ledger::open(ledger_url)?;
    ledger.migrate().await?;
    let closed = periods::close(&ledger, &month, &tariff, Timestamp::now()).await;
    ledger.close().await;
    let p = closed?;
    Ok(format!(
        "closed {}: {} lines, total {} {}\n",
        p.period,
        p.lines,
        Decimal::new(p.total_nanos, 9).normalize(),
        p.currency
    ))
}

/// `commons ledger verify [--period P]`: every closed period (or one) rated again from the raw
/// intervals; an error naming each line that does not agree to the penny.
pub async fn verify(period: Option<&str>, ledger_url: &str) -> Result<String> {
    let ledger = Ledger::open_to_read(ledger_url)?;
    let closed = ledger.closed_periods().await?;
    let chosen: Vec<_> = closed.iter().filter(|p| period.is_none_or(|want| p.period == want)).collect();
    if let (Some(want), true) = (period, chosen.is_empty()) {
        return Err(Error::Invalid(format!("--period {want}: not a closed period (commons ledger periods)")));
    }
    let mut out = String::new();
    let mut problems = Vec::new();
    for p in chosen {
        let found = periods::verify(&ledger, p).await?;
        let _ = writeln!(
            out,
            "{}: {} lines, total {} {}: {}",
            p.period,
            p.lines,
            Decimal::new(p.total_nanos, 9).normalize(),
            p.currency,
            if found.is_empty() {
                "every line agrees with the raw intervals".to_owned()
            } else {
                format!("{} lines disagree", found.len())
            }
        );
        problems.extend(found);
    }
    ledger.close().await;
    if problems.is_empty() {
        if out.is_empty() {
            out.push_str("no closed periods\n");
        }
        Ok(out)
    } else {
        Err(Error::Invalid(format!("the ledger does not verify:\n{out}{}", problems.join("\n"))))
    }
}

/// `commons ledger periods`: the closed periods.
pub async fn list(ledger_url: &str) -> Result<String> {
    let ledger = Ledger::open_to_read(ledger_url)?;
    let closed = ledger.closed_periods().await?;
    ledger.close().await;
    let mut out = String::from("PERIOD   CLOSED                     LINES  TOTAL\n");
    for p in closed {
        let at = Timestamp::from_millisecond(p.closed_ms).map(|t| t.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<8} {:<26} {:>5}  {} {}",
            p.period,
            at,
            p.lines,
            Decimal::new(p.total_nanos, 9).normalize(),
            p.currency
        );
    }
    Ok(out)
}

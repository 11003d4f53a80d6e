//! Closes each month automatically a configurable number of days after it ends (default 5), in
//! order, with the rate cards and VAT rates in the cluster then: the same close as `commons ledger close`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::Client;

use super::periods::{self, Month};
use crate::ledger::Ledger;

/// How often the closer looks for a month to close.
const EVERY: Duration = Duration::from_secs(3600);

/// The months due to close at `now`, oldest first: from the month metering began, each that ended
/// at least `after_days` days ago and is not closed yet.
pub fn due(since: Timestamp, closed: &[String], now: Timestamp, after_days: u32) -> Vec<Month> {
    let grace = SignedDuration::from_hours(24 * i64::from(after_days));
    let mut out = Vec::new();
    let mut m = Month::of(since);
    while m.until + grace <= now {
        if !closed.contains(&m.name) {
            out.push(m.clone());
        }
        m = m.next();
    }
    out
}

/// Runs until `stop` resolves: at start (once the meter has caught up) and every hour.
pub async fn run(
    client: Client,
    ledger: Ledger,
    after_days: u32,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let mut stop = std::pin::pin!(stop);
    // The meter first records what went while Commons was down: give it time to list the cluster.
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = EVERY;
        if let Err(e) = close_due(&client, &ledger, after_days).await {
            tracing::warn!(error = %e, "closing a period failed; trying again within the hour");
        }
    }
}

async fn close_due(client: &Client, ledger: &Ledger, after_days: u32) -> crate::error::Result<()> {
    let now = Timestamp::now();
    let Some(since) = ledger.metering_began().await?.and_then(|ms| Timestamp::from_millisecond(ms).ok())
    else {
        return Ok(());
    };
    let closed: Vec<String> = ledger.closed_periods().await?.into_iter().map(|p| p.period).collect();
    let months = due(since, &closed, now, after_days);
    if months.is_empty() {
        return Ok(());
    }
    let tariff = crate::report_cmd::tariff_in(client).await?;
    for m in months {
        let p = periods::close(ledger, &m, &tariff, Timestamp::now()).await?;
        tracing::info!(period = %p.period, lines = p.lines, total_nanos = p.total_nanos, currency = %p.currency, "period closed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn months_close_in_order_the_configured_days_after_they_end() {
        let since = at("2026-09-14T10:00:00Z");
        let names = |v: Vec<Month>| v.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(due(since, &[], at("2026-12-05T23:59:59Z"), 5)), ["2026-09", "2026-10"]);
        assert_eq!(names(due(since, &[], at("2026-12-06T00:00:00Z"), 5)), ["2026-09", "2026-10", "2026-11"]);
        assert_eq!(
            names(due(since, &["2026-09".into()], at("2026-12-01T00:00:00Z"), 0)),
            ["2026-10", "2026-11"]
        );
        assert!(due(since, &[], at("2026-10-03T00:00:00Z"), 5).is_empty(), "September closes on 6 October");
    }
}

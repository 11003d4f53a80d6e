//! Periods: calendar months in UTC, each open until it is closed, then never changed.
//!
//! - An **open** period's lines are rated from the ledger now, plus a correction line for anything
//!   learned since about a closed period.
//! - **Closing** a period rates it from the ledger as it is at that instant, with the rate cards
//!   in the cluster then, makes the corrections for earlier closed periods, and stores lines and
//!   cards in one transaction. Months close in order.
//! - **Verifying** a closed period rates it again from the raw intervals as they were known when
//!   it closed and the cards it was closed with, and must find every line to the penny.

use futures::StreamExt;
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use rust_decimal::Decimal;

use super::charges::{ChargeLine, corrections};
use super::money;
use super::rater::Rater;
use super::rating::Tariff;
pub use super::stored::closed_tariff;
use super::stored::{cards_to_stored, from_stored, to_stored, vat_from_stored, vat_to_stored};
use crate::error::{Error, Result};
use crate::ledger::{ClosedPeriod, Ledger, StoredLine};

/// A calendar month in UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Month {
    /// `YYYY-MM`.
    pub name: String,
    /// Its first instant.
    pub from: Timestamp,
    /// The first instant of the next month.
    pub until: Timestamp,
}

impl Month {
    /// The month `YYYY-MM` names.
    pub fn parse(name: &str) -> Result<Month> {
        let bad =
            || Error::Invalid(format!("period {name:?}: expected a month as YYYY-MM, for example 2026-11"));
        let (y, m) = name.split_once('-').ok_or_else(bad)?;
        if !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let (y, m): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if y < 1970 || !(1..=12).contains(&m) || name.len() != 7 {
            return Err(bad());
        }
        Month::starting(Date::new(y, m, 1).map_err(|_| bad())?).ok_or_else(bad)
    }

    /// The month an instant is in.
    pub fn of(t: Timestamp) -> Month {
        let d = t.to_zoned(TimeZone::UTC).date();
        Month::starting(d.first_of_month()).unwrap_or(Month { name: String::new(), from: t, until: t })
    }

    fn starting(first: Date) -> Option<Month> {
        let next = first.checked_add(1.month()).ok()?;
        let at = |d: Date| d.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
        Some(Month { name: first.strftime("%Y-%m").to_string(), from: at(first)?, until: at(next)? })
    }

    /// The month after.
    pub fn next(&self) -> Month {
        Month::of(self.until)
    }
}

/// A month's own charge lines from the ledger as it was known at `as_of` (or now).
pub async fn rate(
    ledger: &Ledger,
    month: &Month,
    until: Timestamp,
    tariff: &Tariff,
    as_of: Option<i64>,
) -> Result<Vec<ChargeLine>> {
    let mut rater = rater(ledger, month, until, tariff, as_of).await?;
    let mut intervals = ledger.overlapping(month.from.as_millisecond(), until.as_millisecond());
    while let Some(interval) = intervals.next().await {
        rater.add(&interval?)?;
    }
    Ok(rater.finish())
}

/// A rater for `[month.from, until)` given the nodes' capacity and the shares first.
async fn rater(
    ledger: &Ledger,
    month: &Month,
    until: Timestamp,
    tariff: &Tariff,
    as_of: Option<i64>,
) -> Result<Rater> {
    let context = ledger.context_overlapping(month.from.as_millisecond(), until.as_millisecond()).await?;
    Ok(Rater::new(month.from, until, tariff.clone(), as_of)?.with_context(&context)?)
}

/// What sharing each shared service saved in `month` (until `until`), from the ledger as it was
/// known at `as_of` (a closed month: when it closed, with the tariff it closed with).
pub async fn savings(
    ledger: &Ledger,
    month: &Month,
    until: Timestamp,
    tariff: &Tariff,
    as_of: Option<i64>,
) -> Result<Vec<super::sharing::Saving>> {
    let mut rater = rater(ledger, month, until, tariff, as_of).await?;
    let mut intervals = ledger.overlapping(month.from.as_millisecond(), until.as_millisecond());
    while let Some(interval) = intervals.next().await {
        rater.add(&interval?)?;
    }
    Ok(rater.savings())
}

/// What has been charged for closed month `q` in periods closed before `before`: its own lines
/// and the corrections made for it since.
async fn billed(ledger: &Ledger, q: &ClosedPeriod, before: &str) -> Result<Vec<ChargeLine>> {
    let own = ledger.period_lines(&q.period).await?;
    let fixes = ledger.corrections_of(&q.period, before).await?;
    let places = money::minor_unit_places(&q.currency);
    own.iter().filter(|l| l.corrects.is_empty()).chain(&fixes).map(|l| from_stored(l, places)).collect()
}

/// The corrections for every period closed before `month`, as the ledger is known at `as_of`.
async fn corrections_before(
    ledger: &Ledger,
    month: &Month,
    tariff: &Tariff,
    as_of: Option<i64>,
) -> Result<Vec<ChargeLine>> {
    let mut out = Vec::new();
    for closed in ledger.closed_periods().await?.into_iter().filter(|p| p.period < month.name) {
        let q = Month::parse(&closed.period)?;
        // Prices as they stand (a card published later with an earlier effectiveFrom re-prices a
        // closed month, as a correction); VAT as the month was closed with: a VAT rate published
        // or deleted later does not tax or refund months already invoiced.
        let vat = vat_from_stored(&ledger.period_vat_rates(&closed.period).await?)?;
        let q_tariff = Tariff { cards: tariff.cards.clone(), vat };
        let due = rate(ledger, &q, q.until, &q_tariff, as_of).await?;
        out.extend(corrections(&q.name, &due, &billed(ledger, &closed, &month.name).await?));
    }
    Ok(out)
}

/// A month's lines and whether they are closed: a closed month's lines as stored, an open month's
/// rated now (until `until`) with `cards`, with the corrections due for closed months.
pub async fn lines(
    ledger: &Ledger,
    month: &Month,
    until: Timestamp,
    tariff: &Tariff,
) -> Result<(Vec<ChargeLine>, Option<ClosedPeriod>)> {
    if let Some(closed) = ledger.closed_periods().await?.into_iter().find(|p| p.period == month.name) {
        let places = money::minor_unit_places(&closed.currency);
        let lines = ledger
            .period_lines(&month.name)
            .await?
            .iter()
            .map(|l| from_stored(l, places))
            .collect::<Result<_>>()?;
        return Ok((lines, Some(closed)));
    }
    let mut lines = rate(ledger, month, until, tariff, None).await?;
    // The corrections due belong to the next month to close, the one after the latest closed, and
    // to no later month (they would be counted twice).
    let latest = ledger.closed_periods().await?.last().map(|p| p.period.clone());
    let next_to_close = latest.as_deref().map(Month::parse).transpose()?.map(|m| m.next().name);
    if next_to_close.is_none_or(|n| n == month.name) {
        lines.extend(corrections_before(ledger, month, tariff, None).await?);
    }
    Ok((lines, None))
}

/// Closes `month` at `now` with `cards`: refused unless it has ended and every month before it
/// since metering began is closed.
pub async fn close(ledger: &Ledger, month: &Month, tariff: &Tariff, now: Timestamp) -> Result<ClosedPeriod> {
    if month.until > now {
        return Err(Error::Invalid(format!(
            "period {}: the month has not ended; it can be closed from {}",
            month.name, month.until
        )));
    }
    let now_ms = now.as_millisecond();
    let began = ledger.metering_began().await?.and_then(|ms| Timestamp::from_millisecond(ms).ok());
    let since = began.map_or_else(|| month.clone(), Month::of);
    let closed = ledger.closed_periods().await?;
    let mut m = since;
    while m.name < month.name {
        if !closed.iter().any(|p| p.period == m.name) {
            return Err(Error::Invalid(format!(
                "period {}: close {} first (months close in order)",
                month.name, m.name
            )));
        }
        m = m.next();
    }
    // Only once the meter's record is complete past the month's end: otherwise what ended while
    // Commons was not watching would be closed as still running.
    let complete = ledger.seen_through().await?;
    if complete.is_none_or(|t| t < month.until.as_millisecond()) {
        let through = complete
            .and_then(|t| Timestamp::from_millisecond(t).ok())
            .map_or("never".into(), |t| t.to_string());
        return Err(Error::Invalid(format!(
            "period {}: the ledger is complete only up to {through}; the month closes once the meter has recorded past {}",
            month.name, month.until
        )));
    }
    let mut lines = rate(ledger, month, month.until, tariff, Some(now_ms)).await?;
    lines.extend(corrections_before(ledger, month, tariff, Some(now_ms)).await?);
    let stored = to_stored(&lines)?;
    let period = ClosedPeriod {
        period: month.name.clone(),
        from_ms: month.from.as_millisecond(),
        until_ms: month.until.as_millisecond(),
        closed_ms: now_ms,
        currency: tariff.cards.first().map(|c| c.currency.clone()).unwrap_or_default(),
        lines: i64::try_from(stored.len()).unwrap_or(i64::MAX),
        total_nanos: stored.iter().map(|l| l.amount_nanos).sum(),
    };
    ledger
        .close_period(&period, &cards_to_stored(&tariff.cards), &vat_to_stored(&tariff.vat), &stored)
        .await?;
    Ok(period)
}

/// Rates closed `period` again from the raw intervals as they were known when it closed and the
/// cards it was closed with; every difference, naming the line. Empty when all agree.
pub async fn verify(ledger: &Ledger, period: &ClosedPeriod) -> Result<Vec<String>> {
    let month = Month::parse(&period.period)?;
    let tariff = closed_tariff(ledger, &period.period).await?;
    let as_of = Some(period.closed_ms);
    let mut expected = rate(ledger, &month, month.until, &tariff, as_of).await?;
    expected.extend(corrections_before(ledger, &month, &tariff, as_of).await?);
    let expected = to_stored(&expected)?;
    let stored = ledger.period_lines(&period.period).await?;
    let mut problems = Vec::new();
    for n in 0..expected.len().max(stored.len()) {
        match (expected.get(n), stored.get(n)) {
            (Some(e), Some(s)) if e == s => {}
            (Some(e), Some(s)) => problems.push(format!(
                "{} line {}: stored {} {} {} for {} ({}), recomputed {} {} {} for {} ({})",
                period.period,
                s.line_no,
                s.charge,
                s.quantity,
                amount(s),
                s.tenancy,
                s.namespace,
                e.charge,
                e.quantity,
                amount(e),
                e.tenancy,
                e.namespace
            )),
            (Some(e), None) => problems.push(format!(
                "{} line {}: missing (recomputed {} {} for {})",
                period.period,
                e.line_no,
                e.charge,
                amount(e),
                e.tenancy
            )),
            (None, Some(s)) => problems.push(format!(
                "{} line {}: not recomputed ({} {} for {})",
                period.period,
                s.line_no,
                s.charge,
                amount(s),
                s.tenancy
            )),
            (None, None) => {}
        }
    }
    let total: i64 = stored.iter().map(|l| l.amount_nanos).sum();
    if total != period.total_nanos || i64::try_from(stored.len()).ok() != Some(period.lines) {
        problems.push(format!(
            "{}: the lines add up to {} in {} lines, the period records {} in {}",
            period.period,
            Decimal::new(total, 9).normalize(),
            stored.len(),
            Decimal::new(period.total_nanos, 9).normalize(),
            period.lines
        ));
    }
    Ok(problems)
}

fn amount(l: &StoredLine) -> Decimal {
    Decimal::new(l.amount_nanos, 9).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_a_calendar_month_in_utc() {
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(
            (m.from.to_string(), m.until.to_string()),
            ("2026-11-01T00:00:00Z".into(), "2026-12-01T00:00:00Z".into())
        );
        assert_eq!(m.next().name, "2026-12");
        assert_eq!(Month::parse("2026-12").unwrap().next().name, "2027-01");
        assert_eq!(Month::of("2026-11-30T23:59:59.999Z".parse().unwrap()).name, "2026-11");
        for bad in ["2026-13", "2026-1", "november", "2026-00", "", "2026-+1", "+026-11"] {
            let err = Month::parse(bad).unwrap_err().to_string();
            assert!(err.contains("YYYY-MM"), "{bad}: {err}");
        }
    }
}

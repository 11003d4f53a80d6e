//! Closed periods in the ledger: each month once closed, with its charge lines and the rate cards
//! it was closed with, written in one transaction and never changed after (the database refuses).

use super::{Ledger, LedgerError, Result, db};

/// A closed calendar month.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClosedPeriod {
    /// `YYYY-MM`.
    pub period: String,
    /// Its first instant (Unix ms).
    pub from_ms: i64,
    /// The first instant of the next month.
    pub until_ms: i64,
    /// When it was closed.
    pub closed_ms: i64,
    /// The currency of its lines.
    pub currency: String,
    /// How many lines it has.
    pub lines: i64,
    /// The sum of its lines, in units of 10^-9 of the currency.
    pub total_nanos: i64,
}

/// A rate card as a period was closed with it; prices as the exact decimal text of the card.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCard {
    /// The card's name.
    pub name: String,
    /// When it took effect (Unix ms).
    pub effective_from_ms: i64,
    /// Its currency.
    pub currency: String,
    /// Per CPU core-hour.
    pub cpu: String,
    /// Per GiB-hour of memory.
    pub memory: String,
    /// Per GiB-hour of storage.
    pub storage: String,
    /// Per load-balancer-hour.
    pub load_balancer: String,
    /// The platform overhead percentage.
    pub overhead_percent: String,
}

/// A VAT rate as a period was closed with it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredVat {
    /// The VatRate's name.
    pub name: String,
    /// When it took effect (Unix ms).
    pub effective_from_ms: i64,
    /// The percentage, as the exact decimal text of the rate.
    pub percent: String,
}

/// A closed period's charge line as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredLine {
    /// Its place in the period, from 1.
    pub line_no: i64,
    /// The earlier period a correction is for, or empty.
    pub corrects: String,
    /// The Tenancy.
    pub tenancy: String,
    /// The namespace.
    pub namespace: String,
    /// The HostedService, or empty.
    pub hosted_service: String,
    /// The organisation's id.
    pub organisation: String,
    /// The organisation's name.
    pub organisation_name: String,
    /// The sector.
    pub sector: String,
    /// The cost centre.
    pub cost_centre: String,
    /// What it charges for.
    pub charge: String,
    /// Exact unit-hours, or empty for the overhead.
    pub quantity: String,
    /// The amount in units of 10^-9 of the currency.
    pub amount_nanos: i64,
    /// The rate card it was priced with.
    pub rate_card: String,
}

const PERIODS: &str = "SELECT period, from_ms, until_ms, closed_ms, currency, lines, total_nanos \
    FROM closed_period ORDER BY period";
const LINES: &str = "SELECT line_no, corrects, tenancy, namespace, hosted_service, organisation, \
    organisation_name, sector, cost_centre, charge, quantity, amount_nanos, rate_card FROM charge_line \
    WHERE period = $1 ORDER BY line_no";
const CORRECTIONS_OF: &str = "SELECT line_no, corrects, tenancy, namespace, hosted_service, organisation, \
    organisation_name, sector, cost_centre, charge, quantity, amount_nanos, rate_card FROM charge_line \
    WHERE corrects = $1 AND period < $2 ORDER BY period, line_no";
const CARDS: &str = "SELECT name, effective_from_ms, currency, cpu, memory, storage, load_balancer, \
    overhead_percent FROM period_rate_card WHERE period = $1 ORDER BY effective_from_ms, name";
const VAT_RATES: &str = "SELECT name, effective_from_ms, percent FROM period_vat_rate WHERE period = $1 ORDER BY effective_from_ms, name";
const INSERT_VAT: &str =
    "INSERT INTO period_vat_rate (period, name, effective_from_ms, percent) VALUES ($1, $2, $3, $4)";
const INSERT_PERIOD: &str = "INSERT INTO closed_period (period, from_ms, until_ms, closed_ms, currency, \
    lines, total_nanos) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const INSERT_CARD: &str = "INSERT INTO period_rate_card (period, name, effective_from_ms, currency, cpu, \
    memory, storage, load_balancer, overhead_percent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_LINE: &str = "INSERT INTO charge_line (period, line_no, corrects, tenancy, namespace, \
    hosted_service, organisation, organisation_name, sector, cost_centre, charge, quantity, amount_nanos, \
    rate_card) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
const IS_CLOSED: &str = "SELECT COUNT(*) FROM closed_period WHERE period = $1";

impl Ledger {
    /// Every closed period, oldest first.
    pub async fn closed_periods(&self) -> Result<Vec<ClosedPeriod>> {
        let rows: Vec<ClosedPeriod> = on_pool!(self, |pool| {
            sqlx::query_as(PERIODS).fetch_all(pool).await.map_err(db("reading closed periods"))?
        });
        Ok(rows)
    }

    /// A closed period's lines, in order.
    pub async fn period_lines(&self, period: &str) -> Result<Vec<StoredLine>> {
        let rows: Vec<StoredLine> = on_pool!(self, |pool| {
            sqlx::query_as(LINES)
                .bind(period)
                .fetch_all(pool)
                .await
                .map_err(db("reading a period's lines"))?
        });
        Ok(rows)
    }

    /// The correction lines for `period` made in periods closed before `before` (`YYYY-MM`).
    pub async fn corrections_of(&self, period: &str, before: &str) -> Result<Vec<StoredLine>> {
        let rows: Vec<StoredLine> = on_pool!(self, |pool| {
            sqlx::query_as(CORRECTIONS_OF)
                .bind(period)
                .bind(before)
                .fetch_all(pool)
                .await
                .map_err(db("reading corrections"))?
        });
        Ok(rows)
    }

    /// The rate cards a period was closed with.
    pub async fn period_cards(&self, period: &str) -> Result<Vec<StoredCard>> {
        let rows: Vec<StoredCard> = on_pool!(self, |pool| {
            sqlx::query_as(CARDS)
                .bind(period)
                .fetch_all(pool)
                .await
                .map_err(db("reading a period's rate cards"))?
        });
        Ok(rows)
    }

    /// The VAT rates a period was closed with.
    pub async fn period_vat_rates(&self, period: &str) -> Result<Vec<StoredVat>> {
        let rows: Vec<StoredVat> = on_pool!(self, |pool| {
            sqlx::query_as(VAT_RATES)
                .bind(period)
                .fetch_all(pool)
                .await
                .map_err(db("reading a period's VAT rates"))?
        });
        Ok(rows)
    }

    /// Whether `period` is closed.
    pub async fn is_closed(&self, period: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(IS_CLOSED)
                .bind(period)
                .fetch_one(pool)
                .await
                .map_err(db("reading closed periods"))?
        });
        Ok(n > 0)
    }

    /// Closes a period: its record, the cards and VAT rates it was rated with and its lines, all
    /// or nothing.
    /// A period already closed is refused (it never changes).
    pub async fn close_period(
        &self,
        p: &ClosedPeriod,
        cards: &[StoredCard],
        vat: &[StoredVat],
        lines: &[StoredLine],
    ) -> Result<()> {
        if self.is_closed(&p.period).await? {
            return Err(LedgerError::Closed(p.period.clone()));
        }
        in_transaction!(self, |tx| {
            for c in cards {
                sqlx::query(INSERT_CARD)
                    .bind(&p.period)
                    .bind(&c.name)
                    .bind(c.effective_from_ms)
                    .bind(&c.currency)
                    .bind(&c.cpu)
                    .bind(&c.memory)
                    .bind(&c.storage)
                    .bind(&c.load_balancer)
                    .bind(&c.overhead_percent)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("recording a period's rate cards"))?;
            }
            for v in vat {
                sqlx::query(INSERT_VAT)
                    .bind(&p.period)
                    .bind(&v.name)
                    .bind(v.effective_from_ms)
                    .bind(&v.percent)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("recording a period's VAT rates"))?;
            }
            for l in lines {
                sqlx::query(INSERT_LINE)
                    .bind(&p.period)
                    .bind(l.line_no)
                    .bind(&l.corrects)
                    .bind(&l.tenancy)
                    .bind(&l.namespace)
                    .bind(&l.hosted_service)
                    .bind(&l.organisation)
                    .bind(&l.organisation_name)
                    .bind(&l.sector)
                    .bind(&l.cost_centre)
                    .bind(&l.charge)
                    .bind(&l.quantity)
                    .bind(l.amount_nanos)
                    .bind(&l.rate_card)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("recording a period's lines"))?;
            }
            // Last: once this row exists nothing more can be added to the period.
            sqlx::query(INSERT_PERIOD)
                .bind(&p.period)
                .bind(p.from_ms)
                .bind(p.until_ms)
                .bind(p.closed_ms)
                .bind(&p.currency)
                .bind(p.lines)
                .bind(p.total_nanos)
                .execute(&mut *tx)
                .await
                .map_err(db("closing a period"))?;
        });
        Ok(())
    }
}

//! The two stores behind one type: the same SQL text for both, each query compiled once per
//! backend by [`on_pool!`].

use std::str::FromStr;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::record::{Attribution, Held, Interval, Kind, Write};
use super::{LedgerError, Result, db};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The ledger, in one of its two stores.
#[derive(Clone, Debug)]
pub enum Ledger {
    /// A file beside Commons.
    Sqlite(SqlitePool),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

const OPEN: &str = "INSERT INTO allocation_interval (interval_key, kind, object_uid, namespace, \
    object_name, tenancy, organisation, organisation_name, sector, cost_centre, hosted_service, \
    cpu_milli, memory_milli, storage_milli, load_balancer_milli, start_ms, end_ms, end_estimated, \
    recorded_ms, end_recorded_ms, share_weight) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
    $13, $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT DO NOTHING";
const CLOSE: &str = "UPDATE allocation_interval SET end_ms = $2, end_estimated = $3, end_recorded_ms = $4 \
    WHERE interval_key = $1 AND end_ms IS NULL";
const SET_STATE: &str = "INSERT INTO meter_state (name, value) VALUES ($1, $2) \
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";
const INIT_STATE: &str =
    "INSERT INTO meter_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
const GET_STATE: &str = "SELECT value FROM meter_state WHERE name = $1";
#[cfg(test)]
const COLUMNS: &str = "interval_key, kind, object_uid, namespace, object_name, tenancy, organisation, \
    organisation_name, sector, cost_centre, hosted_service, cpu_milli, memory_milli, storage_milli, \
    load_balancer_milli, start_ms, end_ms, end_estimated, recorded_ms, end_recorded_ms, share_weight";
const OPEN_INTERVALS: &str = "SELECT interval_key, kind, object_uid, namespace, object_name, tenancy, \
    organisation, organisation_name, sector, cost_centre, hosted_service, cpu_milli, memory_milli, \
    storage_milli, load_balancer_milli, start_ms, end_ms, end_estimated, recorded_ms, end_recorded_ms, \
    share_weight FROM allocation_interval \
    WHERE end_ms IS NULL ORDER BY id";
const OVERLAPPING: &str = "SELECT interval_key, kind, object_uid, namespace, object_name, tenancy, \
    organisation, organisation_name, sector, cost_centre, hosted_service, cpu_milli, memory_milli, \
    storage_milli, load_balancer_milli, start_ms, end_ms, end_estimated, recorded_ms, end_recorded_ms, \
    share_weight FROM allocation_interval \
    WHERE start_ms < $2 AND (end_ms IS NULL OR end_ms > $1) ORDER BY id";
const CONTEXT_OVERLAPPING: &str = "SELECT interval_key, kind, object_uid, namespace, object_name, tenancy, \
    organisation, organisation_name, sector, cost_centre, hosted_service, cpu_milli, memory_milli, \
    storage_milli, load_balancer_milli, start_ms, end_ms, end_estimated, recorded_ms, end_recorded_ms, \
    share_weight FROM allocation_interval \
    WHERE kind IN ('node', 'share', 'provider-share') AND start_ms < $2 AND (end_ms IS NULL OR end_ms > $1) ORDER BY id";

/// The meter's own facts, by name in `meter_state`.
const METERING_SINCE: &str = "metering_since_ms";
const SEEN_THROUGH: &str = "seen_through_ms";

/// A row as stored; the same struct reads both backends.
#[derive(sqlx::FromRow)]
struct Row {
    interval_key: String,
    kind: String,
    object_uid: String,
    namespace: String,
    object_name: String,
    tenancy: String,
    organisation: String,
    organisation_name: String,
    sector: String,
    cost_centre: String,
    hosted_service: String,
    cpu_milli: i64,
    memory_milli: i64,
    storage_milli: i64,
    load_balancer_milli: i64,
    start_ms: i64,
    end_ms: Option<i64>,
    end_estimated: i64,
    recorded_ms: i64,
    end_recorded_ms: Option<i64>,
    share_weight: i64,
}

impl TryFrom<Row> for Interval {
    type Error = LedgerError;

    fn try_from(r: Row) -> Result<Interval> {
        let kind = Kind::parse(&r.kind).ok_or_else(|| LedgerError::Corrupt {
            key: r.interval_key.clone(),
            reason: format!("unknown kind {:?}", r.kind),
        })?;
        Ok(Interval {
            key: r.interval_key,
            kind,
            uid: r.object_uid,
            namespace: r.namespace,
            name: r.object_name,
            attribution: Attribution {
                tenancy: r.tenancy,
                organisation: r.organisation,
                organisation_name: r.organisation_name,
                sector: r.sector,
                cost_centre: r.cost_centre,
                hosted_service: r.hosted_service,
            },
            held: Held {
                cpu_milli: r.cpu_milli,
                memory_milli: r.memory_milli,
                storage_milli: r.storage_milli,
                load_balancer_milli: r.load_balancer_milli,
                share_weight: r.share_weight,
            },
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            estimated: r.end_estimated != 0,
            recorded_ms: r.recorded_ms,
            end_recorded_ms: r.end_recorded_ms,
        })
    }
}

impl Ledger {
    /// The ledger a URL names: `sqlite://<path>` (the file is made if missing) or
    /// `postgres://…` / `postgresql://…`. Nothing is connected yet (a database that is down is
    /// waited for by whoever uses it); a URL that cannot name a ledger is an error now.
    pub fn open(url: &str) -> Result<Ledger> {
        Ledger::open_with(url, true)
    }

    /// The ledger a URL names, to read only: an SQLite file that does not exist is an error (on
    /// first use) rather than made.
    pub fn open_to_read(url: &str) -> Result<Ledger> {
        Ledger::open_with(url, false)
    }

    fn open_with(url: &str, write: bool) -> Result<Ledger> {
        let bad = |reason| LedgerError::Url { url: redact(url), reason };
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| bad("not a SQLite URL (sqlite:///var/lib/commons/ledger.db)"))?
                .create_if_missing(write)
                .read_only(!write)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // 256 KiB of page cache a connection instead of SQLite's 2 MiB: the ledger's writes
                // touch a few pages, reports read through the system's page cache anyway, and 4
                // connections' caches were 2.4 MB of a 1,000-tenancy operator's heap.
                .pragma("cache_size", "-256");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options);
            Ok(Ledger::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy(url)
                .map_err(|_| bad("not a PostgreSQL URL (postgres://user@host:5432/database)"))?;
            Ok(Ledger::Postgres(pool))
        } else {
            Err(bad("must start with sqlite:// or postgres://"))
        }
    }

    /// Which store this is, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self {
            Ledger::Sqlite(_) => "sqlite",
            Ledger::Postgres(_) => "postgres",
        }
    }

    /// Brings the tables up to date (several replicas may call it at once: the migrator locks).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Ledger::Sqlite(pool) => SQLITE.run(pool).await?,
            Ledger::Postgres(pool) => POSTGRES.run(pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await.map_err(db("ping"))?;
        });
        Ok(())
    }

    /// When metering began: set to `now_ms` the first time, and never changed after.
    pub async fn metering_since(&self, now_ms: i64) -> Result<i64> {
        on_pool!(self, |pool| {
            sqlx::query(INIT_STATE)
                .bind(METERING_SINCE)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(db("recording when metering began"))?;
        });
        let since = self.state(METERING_SINCE).await?;
        Ok(since.unwrap_or(now_ms))
    }

    /// When metering began, if it has.
    pub async fn metering_began(&self) -> Result<Option<i64>> {
        self.state(METERING_SINCE).await
    }

    /// The last instant the ledger held everything the meter had seen, if it ever ran.
    pub async fn seen_through(&self) -> Result<Option<i64>> {
        self.state(SEEN_THROUGH).await
    }

    async fn state(&self, name: &'static str) -> Result<Option<i64>> {
        let value: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(GET_STATE)
                .bind(name)
                .fetch_optional(pool)
                .await
                .map_err(db("reading the meter's state"))?
        });
        Ok(value)
    }

    /// Writes every change in one transaction, in order, and then (when given) that the ledger
    /// holds everything seen up to `seen_through_ms`. Opening a span already recorded, or closing one
    /// already closed, changes nothing, so a batch can be written again after a failure.
    pub async fn write(&self, writes: &[Write], seen_through_ms: Option<i64>, now_ms: i64) -> Result<()> {
        in_transaction!(self, |tx| {
            for w in writes {
                match w {
                    Write::Open(i) => {
                        sqlx::query(OPEN)
                            .bind(&i.key)
                            .bind(i.kind.as_str())
                            .bind(&i.uid)
                            .bind(&i.namespace)
                            .bind(&i.name)
                            .bind(&i.attribution.tenancy)
                            .bind(&i.attribution.organisation)
                            .bind(&i.attribution.organisation_name)
                            .bind(&i.attribution.sector)
                            .bind(&i.attribution.cost_centre)
                            .bind(&i.attribution.hosted_service)
                            .bind(i.held.cpu_milli)
                            .bind(i.held.memory_milli)
                            .bind(i.held.storage_milli)
                            .bind(i.held.load_balancer_milli)
                            .bind(i.start_ms)
                            .bind(i.end_ms)
                            .bind(i64::from(i.estimated))
                            .bind(now_ms)
                            .bind(i.end_ms.map(|_| now_ms))
                            .bind(i.held.share_weight)
                            .execute(&mut *tx)
                            .await
                            .map_err(db("opening an interval"))?;
                    }
                    Write::Close(c) => {
                        sqlx::query(CLOSE)
                            .bind(&c.key)
                            .bind(c.end_ms)
                            .bind(i64::from(c.estimated))
                            .bind(now_ms)
                            .execute(&mut *tx)
                            .await
                            .map_err(db("closing an interval"))?;
                    }
                }
            }
            if let Some(seen) = seen_through_ms {
                sqlx::query(SET_STATE)
                    .bind(SEEN_THROUGH)
                    .bind(seen)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("recording how far the ledger is complete"))?;
            }
        });
        Ok(())
    }

    /// Every span still open.
    pub async fn open_intervals(&self) -> Result<Vec<Interval>> {
        let rows: Vec<Row> = on_pool!(self, |pool| {
            sqlx::query_as(OPEN_INTERVALS).fetch_all(pool).await.map_err(db("reading open intervals"))?
        });
        rows.into_iter().map(Interval::try_from).collect()
    }

    /// Every span that overlaps `[from_ms, to_ms)`, open ones included, streamed in the order
    /// they were recorded (constant memory however many there are).
    pub fn overlapping(&self, from_ms: i64, to_ms: i64) -> BoxStream<'_, Result<Interval>> {
        on_pool!(self, |pool| {
            sqlx::query_as::<_, Row>(OVERLAPPING)
                .bind(from_ms)
                .bind(to_ms)
                .fetch(pool)
                .map_err(|source| LedgerError::Database { action: "reading intervals", source })
                .and_then(|row| std::future::ready(Interval::try_from(row)))
                .boxed()
        })
    }

    /// The node and share intervals overlapping `[from_ms, to_ms)`: what rating needs before the
    /// other intervals (few: one per node or subscription and change).
    pub async fn context_overlapping(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Interval>> {
        let rows: Vec<Row> = on_pool!(self, |pool| {
            sqlx::query_as(CONTEXT_OVERLAPPING).bind(from_ms).bind(to_ms).fetch_all(pool).await.map_err(
                |source| LedgerError::Database { action: "reading node and share intervals", source },
            )?
        });
        rows.into_iter().map(Interval::try_from).collect()
    }

    /// Closes the pool, waiting for writes in flight.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    // A password in the query (`?password=...`) too.
    if let Some((base, query)) = url.split_once('?') {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        return format!("{}?{}", redact(base), params.join("&"));
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(redact("postgres://u:secret@db:5432/l"), "postgres://u:***@db:5432/l");
        assert_eq!(redact("postgres://u@db/l"), "postgres://u@db/l");
        assert_eq!(redact("sqlite:///var/lib/l.db"), "sqlite:///var/lib/l.db");
        assert_eq!(
            redact("postgres://u@db/l?sslmode=require&password=secret"),
            "postgres://u@db/l?sslmode=require&password=***"
        );
    }

    #[test]
    fn the_columns_read_are_the_columns_written() {
        assert!(
            OPEN_INTERVALS.contains(COLUMNS)
                && OVERLAPPING.contains(COLUMNS)
                && CONTEXT_OVERLAPPING.contains(COLUMNS)
        );
    }
}

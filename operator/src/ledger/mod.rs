//! The ledger: the durable record metering keeps, in SQLite (embedded, the default) or PostgreSQL
//! (production and HA), chosen by one URL. Both are driven by the same SQL text through sqlx;
//! quantities and instants are integers, so both store and sum them exactly and alike
//! (docs/metering.md, "The ledger", says why this crate and this representation).

/// Runs the same body against whichever pool the ledger has.
macro_rules! on_pool {
    ($ledger:expr, |$pool:ident| $body:expr) => {
        match $ledger {
            $crate::ledger::Ledger::Sqlite($pool) => $body,
            $crate::ledger::Ledger::Postgres($pool) => $body,
        }
    };
}

/// Runs the same body inside a write transaction of whichever pool the ledger has (SQLite's
/// `BEGIN IMMEDIATE`, so a busy database waits rather than failing late).
macro_rules! in_transaction {
    ($ledger:expr, |$tx:ident| $body:block) => {
        match $ledger {
            $crate::ledger::Ledger::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err($crate::ledger::db("begin"))?;
                $body
                $tx.commit().await.map_err($crate::ledger::db("commit"))?;
            }
            $crate::ledger::Ledger::Postgres(pool) => {
                let mut $tx = pool.begin().await.map_err($crate::ledger::db("begin"))?;
                $body
                $tx.commit().await.map_err($crate::ledger::db("commit"))?;
            }
        }
    };
}

pub mod calls;
pub mod keys;
pub mod periods;
pub mod record;
pub mod sessions;
mod store;

pub use periods::{ClosedPeriod, StoredCard, StoredLine, StoredVat};
pub use record::{Attribution, Close, Held, Interval, Kind, Write};
pub use store::Ledger;

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The URL names no ledger Commons can keep.
    #[error("--ledger {url}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The database refused or could not be reached.
    #[error("ledger {action}: {source}")]
    Database {
        /// What was being done.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The ledger's tables could not be brought up to date.
    #[error("ledger migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The period is closed already; it never changes.
    #[error(
        "period {0} is closed already; what is learned about it now is a correction in the next period closed"
    )]
    Closed(String),
    /// A stored row does not read back as what Commons writes.
    #[error("ledger row {key}: {reason}")]
    Corrupt {
        /// The row.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl LedgerError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            LedgerError::Url { .. } => "url",
            LedgerError::Database { .. } => "database",
            LedgerError::Migrate(_) => "migrate",
            LedgerError::Corrupt { .. } => "corrupt",
            LedgerError::Closed(_) => "closed",
        }
    }
}

/// The ledger's result.
pub type Result<T> = std::result::Result<T, LedgerError>;

/// Wraps a driver error with what was being done.
pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError {
    move |source| LedgerError::Database { action, source }
}

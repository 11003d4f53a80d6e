//! The ledger: the durable record metering keeps, in SQLite (embedded, the default) or PostgreSQL
//! (production and HA), chosen by one URL. Both are driven by the same SQL text through sqlx;
//! quantities and instants are integers, so both store and sum them exactly and alike
//! (docs/metering.md, "The ledger", says why this crate and this representation).

pub mod record;
mod store;

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
        }
    }
}

/// The ledger's result.
pub type Result<T> = std::result::Result<T, LedgerError>;

/// Wraps a driver error with what was being done.
pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError {
    move |source| LedgerError::Database { action, source }
}

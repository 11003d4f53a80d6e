//! The one error type of the operator process, with a short label for metrics.

use std::path::PathBuf;

/// Everything that can go wrong in the `commons` process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes client could not be configured (no kubeconfig, no in-cluster credentials).
    #[error("cannot configure the Kubernetes client: {0}")]
    KubeConfig(#[source] kube::Error),
    /// A call to the apiserver failed.
    #[error("Kubernetes API call failed: {context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A CRD could not be rendered as YAML.
    #[error("cannot render CRD {name} as YAML: {source}")]
    Yaml {
        /// The CRD's name.
        name: String,
        /// The serialiser's error.
        #[source]
        source: serde_saphyr::ser::Error,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot write").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The committed CRD YAML differs from what the types generate.
    #[error("CRD YAML is out of date: {0}")]
    Stale(String),
    /// Something only the leader runs (the webhook, the meter) stopped; Commons stops with it so a
    /// supervisor starts it again.
    #[error("{0} stopped; see the log")]
    Stopped(String),
    /// The HTTP listener could not start.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An object's spec cannot be acted on (the CRD schema should have refused it).
    #[error("invalid spec: {0}")]
    Invalid(String),
    /// The instant usage is asked as of cannot be given for the month asked.
    #[error("as of: {0}")]
    AsOf(String),
    /// A reflector store's writer stopped (the process is shutting down).
    #[error("a watch of the cluster stopped")]
    StoreClosed,
    /// The watches of the cluster have not delivered their first full list yet.
    #[error("the watches of the cluster are not synced yet")]
    StoreNotReady,
    /// A certificate or key file cannot be used.
    #[error("{path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS server could not be configured.
    #[error("cannot configure TLS: {0}")]
    Tls(String),
    /// An object Commons would make exists already and belongs to something else.
    #[error("{kind} {namespace}/{name} exists and is not Commons' to change")]
    Taken {
        /// Its kind.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A metric could not be registered.
    #[error("cannot register metric: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The ledger cannot be used.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// Usage cannot be charged.
    #[error(transparent)]
    Charge(#[from] crate::metering::charges::ChargeError),
}

impl Error {
    /// A short, stable label for the `reason` of error metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::KubeConfig(_) => "kube_config",
            Error::Kube { .. } => "kube_api",
            Error::Yaml { .. } => "yaml",
            Error::Io { .. } => "io",
            Error::Stale(_) => "stale_crds",
            Error::Listen { .. } => "listen",
            Error::Stopped(_) => "stopped",
            Error::Invalid(_) => "invalid_spec",
            Error::AsOf(_) => "invalid_as_of",
            Error::StoreClosed => "store_closed",
            Error::StoreNotReady => "store_not_ready",
            Error::Certificate { .. } => "certificate",
            Error::Tls(_) => "tls",
            Error::Taken { .. } => "name_taken",
            Error::Metrics(_) => "metrics",
            Error::Ledger(e) => e.label(),
            Error::Charge(_) => "charge",
        }
    }
}

/// The operator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What every controller does after a failed reconcile: log it, count it by controller and
/// reason (`commons_reconcile_errors_total`), and try again in 5 s.
pub fn retry_after_failure(
    controller: &str,
    name: &str,
    error: &Error,
    metrics: &crate::metrics::Metrics,
) -> kube::runtime::controller::Action {
    tracing::warn!(controller, name, %error, "reconcile failed");
    metrics.reconcile_errors.with_label_values(&[controller, error.metric_label()]).inc();
    kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(5))
}

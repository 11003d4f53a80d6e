//! `commons meter`: the meter alone, without the controllers or the webhook, against the cluster in
//! KUBECONFIG and one ledger. It records exactly what `commons run` records; it is for a second
//! ledger kept beside the first (the end-to-end tests run one per store against the same pods)
//! and for metering a cluster that Commons' controllers do not run in.

use std::net::SocketAddr;

use commons_api::{AppState, Readiness};
use kube::Client;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::readiness;

/// Meters into the ledger at `ledger_url`, serving health, readiness and metrics on `listen`,
/// until SIGINT or SIGTERM.
pub async fn run(ledger_url: &str, listen: SocketAddr) -> Result<()> {
    let ledger = Ledger::open(ledger_url)?;
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let watches = crate::watch::Watches::start(client.clone());
    let metrics = Metrics::new()?;
    let mut shared = crate::reflectors::Shared::new();
    let tenancy_changes = {
        use futures::StreamExt;
        shared.tenancies.subscribe_when(crate::watch::spec_changed).boxed()
    };
    let lookups = crate::metering::meter::Lookups {
        namespaces: shared.namespaces.store(),
        tenancies: shared.tenancies.store(),
        hosted: shared.hosted.store(),
    };
    shared.namespaces.start(&watches);
    shared.tenancies.start(&watches);
    shared.hosted.start(&watches);
    let (stop_tx, stop_rx) = watch::channel(false);
    let metering = crate::metering::runtime::start(
        &watches,
        lookups,
        tenancy_changes,
        ledger,
        &metrics.registry,
        crate::shutdown::stopped(stop_rx),
    )?;
    let degraded: Vec<(&'static str, readiness::LocalCheck)> = {
        let standing = metering.standing.clone();
        vec![("metering", std::sync::Arc::new(move || standing.check()))]
    };
    let (tx, rx) = watch::channel(Readiness::default());
    let checker = tokio::spawn(readiness::run(client, tx, metrics.clone(), Vec::new(), degraded));
    let app = commons_api::router(AppState {
        readiness: rx,
        registry: metrics.registry.clone(),
        v1: None,
        portal: None,
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Listen { addr: listen.to_string(), source })?;
    tracing::info!(%listen, ledger = %ledger_url_for_log(ledger_url), "metering; serving /healthz, /readyz and /metrics");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            crate::run::shutdown_signal().await;
            let _ = stop_tx.send(true);
        })
        .await
        .map_err(|source| Error::Listen { addr: listen.to_string(), source });
    checker.abort();
    metering.stopped().await;
    served
}

/// The ledger's store without any credentials, for the log.
fn ledger_url_for_log(url: &str) -> &str {
    url.split_once("://").map_or(url, |(scheme, _)| scheme)
}

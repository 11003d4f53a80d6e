//! `commons run`: the operator and the API in one process.

use std::net::SocketAddr;

use commons_api::{AppState, Readiness};
use kube::Client;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::readiness;
use crate::{segment, tenancy};

/// Settings for `commons run`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the API (health, readiness, metrics) listens.
    pub listen: SocketAddr,
    /// How often unchanged objects are reconciled again.
    pub resync: std::time::Duration,
}

/// Connects to the cluster, starts the readiness checker and the controllers, and serves the API
/// until SIGINT or SIGTERM, then lets in-flight reconciles finish.
pub async fn run(settings: Settings) -> Result<()> {
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let metrics = Metrics::new()?;
    let (tx, rx) = watch::channel(Readiness::default());
    let checker = tokio::spawn(readiness::run(client.clone(), tx, metrics.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let segments = tokio::spawn(segment::run(
        client.clone(),
        metrics.clone(),
        settings.resync,
        stopped(stop_rx.clone()),
    ));
    let tenancies =
        tokio::spawn(tenancy::run(client.clone(), metrics.clone(), settings.resync, stopped(stop_rx)));

    let app = commons_api::router(AppState { readiness: rx, registry: metrics.registry.clone() });
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| Error::Listen { addr: settings.listen.to_string(), source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr: settings.listen.to_string(), source })?;
    tracing::info!(%local, "serving /healthz, /readyz and /metrics");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        })
        .await
        .map_err(|source| Error::Listen { addr: local.to_string(), source });
    checker.abort();
    let controllers = futures::future::join(tenancies, segments);
    if tokio::time::timeout(std::time::Duration::from_secs(20), controllers).await.is_err() {
        tracing::warn!("controllers did not stop within 20s");
    }
    tracing::info!("stopped");
    served
}

/// Resolves once `true` is sent.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

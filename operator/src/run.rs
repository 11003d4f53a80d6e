//! `commons run`: the operator and the API in one process.

use std::net::SocketAddr;

use commons_api::{AppState, Readiness};
use kube::Client;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::readiness;

/// Settings for `commons run`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the API (health, readiness, metrics) listens.
    pub listen: SocketAddr,
}

/// Connects to the cluster, starts the readiness checker and serves the API until SIGINT or
/// SIGTERM. Controllers join here as they are built; nothing is watched that cannot be handled.
pub async fn run(settings: Settings) -> Result<()> {
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let metrics = Metrics::new()?;
    let (tx, rx) = watch::channel(Readiness::default());
    let checker = tokio::spawn(readiness::run(client.clone(), tx, metrics.clone()));

    let app = commons_api::router(AppState {
        readiness: rx,
        registry: metrics.registry.clone(),
    });
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: settings.listen.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Listen {
        addr: settings.listen.to_string(),
        source,
    })?;
    tracing::info!(%local, "serving /healthz, /readyz and /metrics");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| Error::Listen {
            addr: local.to_string(),
            source,
        });
    checker.abort();
    tracing::info!("stopped");
    served
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

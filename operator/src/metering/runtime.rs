//! Starts the meter and its ledger writer, for `commons run` (with everything else) and
//! `commons meter` (alone).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::health::{MeterMetrics, Standing};
use super::meter::{self, Lookups};
use super::writer;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::watch::Watches;

/// The running meter.
#[derive(Debug)]
pub struct Running {
    /// Whether metering works (the `metering` readiness check).
    pub standing: Arc<Standing>,
    meter: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Running {
    /// Waits for the meter to stop (after `stop` resolved) and the writer to write what is left.
    pub async fn stopped(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.meter).await;
        let _ = tokio::time::timeout(Duration::from_secs(12), self.writer).await;
    }
}

/// Starts the meter once `lookups` are synced; it meters until `stop` resolves.
pub fn start(
    watches: &Watches,
    lookups: Lookups,
    tenancy_changes: futures::stream::BoxStream<'static, Arc<commons_crds::Tenancy>>,
    ledger: Ledger,
    registry: &prometheus::Registry,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Running> {
    let metrics = MeterMetrics::new(registry)?;
    let standing = Arc::new(Standing::default());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(writer::run(
        ledger.clone(),
        rx,
        standing.clone(),
        metrics.clone(),
        Duration::from_secs(10),
    ));
    let meter = {
        let (watches, standing) = (watches.clone(), standing.clone());
        tokio::spawn(async move {
            loop {
                match crate::watch::synced(&[&lookups.namespaces, &lookups.tenancies, &lookups.hosted]).await
                {
                    Ok(()) => break,
                    Err(Error::StoreNotReady) => continue,
                    Err(_) => return,
                }
            }
            let sinks = meter::Sinks { tx, standing, metrics };
            meter::run(watches, lookups, tenancy_changes, ledger, sinks, stop).await;
        })
    };
    Ok(Running { standing, meter, writer })
}

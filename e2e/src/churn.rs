//! What pod creations cost the operator: reconciles and apiserver writes caused by creating pods
//! in tenancy namespaces, read from the operator's metrics (for the benchmarks).

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::{E2eError, operator_metric, restricted_pod};

/// What creating the pods caused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// Pods created.
    pub pods: usize,
    /// Creations refused (by a namespace's share, until Commons moved headroom) and retried.
    pub retries: usize,
    /// Tenancy reconciles beyond what the periodic resync does in the same time.
    pub tenancy_reconciles: f64,
    /// NetworkSegment reconciles beyond the resync.
    pub segment_reconciles: f64,
    /// Every apiserver write Commons made.
    pub writes: f64,
    /// Of which status writes (Tenancy and NetworkSegment).
    pub status_writes: f64,
    /// From the first creation until the operator wrote nothing for 5 s.
    pub seconds: f64,
}

impl std::fmt::Display for Churn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pod creations ({} retried): {:.0} tenancy reconciles, {:.0} segment reconciles (beyond the resyncs), {} apiserver writes ({} of them status), no writes after {:.1}s",
            self.pods,
            self.retries,
            self.tenancy_reconciles,
            self.segment_reconciles,
            self.writes,
            self.status_writes,
            self.seconds
        )
    }
}

fn counters() -> Result<[f64; 4], E2eError> {
    Ok([
        operator_metric("commons_reconcile_duration_seconds_count{controller=\"tenancy\"}")?,
        operator_metric("commons_reconcile_duration_seconds_count{controller=\"networksegment\"}")?,
        operator_metric("commons_apiserver_writes_total")?,
        operator_metric("commons_apiserver_writes_total{kind=\"Tenancy\",verb=\"status\"}")?
            + operator_metric("commons_apiserver_writes_total{kind=\"NetworkSegment\",verb=\"status\"}")?,
    ])
}

/// Creates `total` pods spread evenly over `namespaces`, 8 at a time (a refusal by a namespace's
/// share is retried, as a controller would), then waits until the operator has made no write for
/// 5 s (at most 120 s), and returns what it did meanwhile. The reconciles the periodic resync
/// makes anyway (its rate measured over 10 idle seconds first) are taken off.
pub async fn pod_churn(client: &Client, namespaces: &[String], total: usize) -> Result<Churn, E2eError> {
    let idle_from = counters()?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = counters()?;
    let rate = |i: usize| (before[i] - idle_from[i]) / 10.0;
    let started = Instant::now();
    let jobs = (0..total).map(|i| {
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespaces[i % namespaces.len()]);
        async move {
            let pod: Pod = serde_json::from_value(restricted_pod(&format!("churn-{i:05}")))?;
            let mut retries = 0;
            loop {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => return Ok::<usize, E2eError>(retries),
                    Err(kube::Error::Api(s)) if s.code == 403 && retries < 60 => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    });
    let outcomes: Vec<Result<usize, E2eError>> =
        futures::stream::iter(jobs).buffer_unordered(8).collect().await;
    let mut retries = 0;
    for o in outcomes {
        retries += o?;
    }
    // Quiet: no write for 5 s (at most 120 s).
    let mut last = counters()?;
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_secs(5) && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = counters()?;
        if now[2] != last[2] {
            still_since = Instant::now();
        }
        last = now;
    }
    let seconds = (started.elapsed() - still_since.elapsed()).as_secs_f64();
    let window = started.elapsed().as_secs_f64();
    Ok(Churn {
        pods: total,
        retries,
        tenancy_reconciles: (last[0] - before[0] - rate(0) * window).max(0.0),
        segment_reconciles: (last[1] - before[1] - rate(1) * window).max(0.0),
        writes: last[2] - before[2],
        status_writes: last[3] - before[3],
        seconds,
    })
}

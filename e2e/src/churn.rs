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
    /// Creations refused and retried, by who refused them.
    pub retries: Refusals,
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
            "{} pod creations ({}): {:.0} tenancy reconciles, {:.0} segment reconciles (beyond the resyncs), {} apiserver writes ({} of them status), no writes after {:.1}s",
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

/// Pod creations refused (and retried), by who refused them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Refusals {
    /// Commons' webhook: the namespace's share of its tenancy's quota.
    pub share: usize,
    /// The apiserver's own quota admission (the namespace's ResourceQuota).
    pub quota: usize,
    /// The namespace's `default` ServiceAccount not made yet (by the controller manager).
    pub service_account: usize,
    /// Anything else.
    pub other: usize,
}

impl Refusals {
    /// Counts one refusal by its message.
    fn count(&mut self, message: &str) {
        if message.contains("of tenancy") {
            self.share += 1;
        } else if message.contains("exceeded quota") {
            self.quota += 1;
        } else if message.contains("service account") || message.contains("serviceaccount") {
            self.service_account += 1;
        } else {
            self.other += 1;
        }
    }

    /// Every refusal.
    pub fn total(&self) -> usize {
        self.share + self.quota + self.service_account + self.other
    }

    fn add(&mut self, other: Refusals) {
        self.share += other.share;
        self.quota += other.quota;
        self.service_account += other.service_account;
        self.other += other.other;
    }
}

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} retried: {} refused by Commons' share, {} by the ResourceQuota, {} before the ServiceAccount, {} other",
            self.total(),
            self.share,
            self.quota,
            self.service_account,
            self.other
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
            let mut retries = Refusals::default();
            loop {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => return Ok::<Refusals, E2eError>(retries),
                    Err(kube::Error::Api(s)) if s.code == 403 && retries.total() < 60 => {
                        retries.count(&s.message);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    });
    let outcomes: Vec<Result<Refusals, E2eError>> =
        futures::stream::iter(jobs).buffer_unordered(8).collect().await;
    let mut retries = Refusals::default();
    for o in outcomes {
        retries.add(o?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_by_their_message() {
        let mut r = Refusals::default();
        r.count(r#"admission webhook "quota.commons.dev" denied the request: pods in namespace "t-app" of tenancy "t" would exceed its share"#);
        r.count(r#"pods "p" is forbidden: exceeded quota: commons-quota, requested: pods=1, used: pods=25, limited: pods=25"#);
        r.count(r#"pods "p" is forbidden: error looking up service account t-app/default: serviceaccount "default" not found"#);
        r.count("pods \"p\" is forbidden: something new");
        assert_eq!(r, Refusals { share: 1, quota: 1, service_account: 1, other: 1 });
        assert_eq!(r.total(), 4);
    }
}

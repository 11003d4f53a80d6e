//! The NetworkSegment controller: admission of tenancies, and the NetworkPolicies that open a
//! segment's paths in its members' namespaces.

pub mod admission;
pub mod desired;
pub mod ranges;
pub mod reconcile;

#[cfg(test)]
pub mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use commons_crds::network_segment::NetworkSegment;
use commons_crds::tenancy::Tenancy;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};

use crate::metrics::Metrics;
use crate::watch::owned_by;

/// What every segment reconcile can reach.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Every Tenancy.
    pub tenancies: Store<Tenancy>,
    /// Every NetworkSegment.
    pub segments: Store<NetworkSegment>,
    /// Every Namespace.
    pub namespaces: Store<Namespace>,
    /// Commons-managed NetworkPolicies.
    pub policies: Store<NetworkPolicy>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// How often an unchanged segment is reconciled again.
    pub resync: Duration,
    /// The cluster's pod and service networks, kept out of segments' outside ranges.
    pub cluster_networks: Vec<crate::reachability::Cidr>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("segments", &self.segments.len()).finish_non_exhaustive()
    }
}

fn ok_unit<T>(r: Result<T, watcher::Error>) -> futures::future::Ready<Option<()>> {
    futures::future::ready(r.ok().map(|_| ()))
}

/// Runs the NetworkSegment controller until `shutdown` resolves.
pub async fn run(
    watches: crate::watch::Watches,
    metrics: Metrics,
    resync: Duration,
    cluster_networks: Vec<crate::reachability::Cidr>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = watches.client().clone();
    let (tenancies, t_stream) = watches.reflect::<Tenancy>(true);
    let (segments, s_stream) = watches.reflect::<NetworkSegment>(true);
    let (namespaces, ns_stream) = watches.reflect::<Namespace>(true);
    let (policies, np_stream) = watches.reflect::<NetworkPolicy>(false);
    let ctx = Arc::new(Context {
        client: client.clone(),
        tenancies,
        segments,
        namespaces,
        policies,
        recorder: Recorder::new(
            client.clone(),
            Reporter { controller: "commons".into(), instance: std::env::var("HOSTNAME").ok() },
        ),
        metrics,
        resync,
        cluster_networks,
    });
    // A segment's paths depend on every tenancy (membership), every other segment (peers) and
    // which namespaces exist, so a change to any of them re-evaluates every segment; a segment
    // whose outcome did not change writes nothing.
    let (reader, writer) = kube::runtime::reflector::store();
    let main = watches.events::<NetworkSegment>(watcher::Config::default()).reflect(writer).applied_objects();
    Controller::for_stream(main, reader)
        .watches_stream(np_stream, owned_by::<NetworkSegment, _>)
        .reconcile_all_on(t_stream.filter_map(ok_unit))
        .reconcile_all_on(s_stream.filter_map(ok_unit))
        .reconcile_all_on(ns_stream.filter_map(ok_unit))
        .trigger_backoff(crate::watch::QuickBackoff::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "segment reconcile request failed");
            }
        })
        .await;
}

//! The NetworkSegment controller: admission of tenancies, and the NetworkPolicies that open a
//! segment's paths in its members' namespaces.

pub mod affected;
pub mod desired;
pub mod ranges;
pub mod reconcile;

#[cfg(test)]
pub mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use commons_crds::labels;
use commons_crds::network_segment::NetworkSegment;
use commons_crds::tenancy::Tenancy;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::ResourceExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
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
    recorder: Recorder,
    resync: Duration,
    cluster_networks: Vec<crate::reachability::Cidr>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = watches.client().clone();
    // Of tenancies the segments read the spec; of namespaces (only Commons' own) the name, labels
    // and whether they are terminating.
    let (tenancies, t_stream) = watches.reflect_stripped::<Tenancy>(true, |t| t.status = None);
    let (segments, s_stream) = watches.reflect::<NetworkSegment>(true);
    let (namespaces, ns_stream) = watches.reflect_stripped::<Namespace>(false, |ns| {
        ns.spec = None;
        ns.status = None;
        ns.metadata.annotations = None;
        ns.metadata.owner_references = None;
    });
    let (policies, np_stream) = watches.reflect::<NetworkPolicy>(false);
    let ctx = Arc::new(Context {
        client: client.clone(),
        tenancies,
        segments,
        namespaces,
        policies,
        recorder,
        metrics,
        resync,
        cluster_networks,
    });
    // A segment's paths depend on the tenancies that ask to join it and on its peers' members, and
    // on which of their namespaces exist: a change to a tenancy's spec, or to one of its
    // namespaces, re-evaluates only the segments it can affect (`affected`). Status writes change
    // nothing a segment reads, so they trigger nothing (the predicates); a change to a segment's
    // spec re-evaluates every segment (peering is by name, and the peers it had are not known).
    let (reader, writer) = kube::runtime::reflector::store();
    let main = watches
        .events::<NetworkSegment>(watcher::Config::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(crate::watch::spec_changed, Default::default());
    let by_tenancy = {
        let segments = ctx.segments.clone();
        move |t: Tenancy| {
            affected::by_tenancy_object(&t, &segments.state())
                .into_iter()
                .map(|s| ObjectRef::new(&s))
                .collect::<Vec<_>>()
        }
    };
    let by_namespace = {
        let (segments, tenancies) = (ctx.segments.clone(), ctx.tenancies.clone());
        move |ns: Namespace| {
            let Some(tenancy) = ns.labels().get(labels::TENANCY).cloned() else { return Vec::new() };
            let requested = tenancies
                .get(&ObjectRef::new(&tenancy))
                .map(|t| t.spec.network_segments.clone())
                .unwrap_or_default();
            affected::by_tenancy(&tenancy, &requested, &segments.state())
                .into_iter()
                .map(|s| ObjectRef::new(&s))
                .collect::<Vec<_>>()
        }
    };
    Controller::for_stream(main, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(crate::watch::CONCURRENCY))
        .watches_stream(np_stream, owned_by::<NetworkSegment, _>)
        .watches_stream(t_stream.predicate_filter(crate::watch::spec_changed, Default::default()), by_tenancy)
        .reconcile_all_on(
            s_stream.predicate_filter(crate::watch::spec_changed, Default::default()).filter_map(ok_unit),
        )
        .watches_stream(
            ns_stream.predicate_filter(crate::watch::labels_or_deletion, Default::default()),
            by_namespace,
        )
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

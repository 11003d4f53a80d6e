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

use crate::events::Recorder;
use commons_crds::labels;
use commons_crds::network_segment::NetworkSegment;
use commons_crds::tenancy::Tenancy;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

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
    pub policies: Store<crate::reflectors::Slim<NetworkPolicy>>,
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

/// What the NetworkSegment controller follows, taken from the shared reflectors before they start.
pub struct Inputs {
    tenancies: Store<Tenancy>,
    segments: Store<NetworkSegment>,
    namespaces: Store<Namespace>,
    policies: Store<crate::reflectors::Slim<NetworkPolicy>>,
    /// Segments whose spec changed.
    changed: BoxStream<'static, Arc<NetworkSegment>>,
    /// Any segment's spec changing: every segment is evaluated again (peering is by name, and the
    /// peers a segment had are not known).
    any_changed: BoxStream<'static, ()>,
    /// Segments a change elsewhere concerns.
    concerned: BoxStream<'static, ObjectRef<NetworkSegment>>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs").field("segments", &self.segments.len()).finish_non_exhaustive()
    }
}

impl Inputs {
    /// Subscribes to the shared reflectors.
    pub fn subscribe(shared: &mut crate::reflectors::Shared) -> Inputs {
        let (tenancies, segments) = (shared.tenancies.store(), shared.segments.store());
        // A segment's paths depend on the tenancies that ask to join it and on its peers' members,
        // and on which of their namespaces exist: a change to a tenancy's spec, or to one of its
        // namespaces, re-evaluates only the segments it can affect (`affected`). Status writes
        // change nothing a segment reads, so they trigger nothing.
        let by_tenancy = {
            let segments = segments.clone();
            move |t: Arc<Tenancy>| {
                let affected: Vec<ObjectRef<NetworkSegment>> =
                    affected::by_tenancy_object(&t, &segments.state())
                        .into_iter()
                        .map(|s| ObjectRef::new(&s))
                        .collect();
                futures::stream::iter(affected)
            }
        };
        let by_namespace = {
            let (segments, tenancies) = (segments.clone(), tenancies.clone());
            move |ns: Arc<Namespace>| {
                let affected: Vec<ObjectRef<NetworkSegment>> = match ns.labels().get(labels::TENANCY) {
                    Some(tenancy) if crate::watch::is_managed(ns.as_ref()) => {
                        let requested = tenancies
                            .get(&ObjectRef::new(tenancy))
                            .map(|t| t.spec.network_segments.clone())
                            .unwrap_or_default();
                        affected::by_tenancy(tenancy, &requested, &segments.state())
                            .into_iter()
                            .map(|s| ObjectRef::new(&s))
                            .collect()
                    }
                    _ => Vec::new(),
                };
                futures::stream::iter(affected)
            }
        };
        let owner = |p: Arc<crate::reflectors::Slim<NetworkPolicy>>| {
            std::future::ready(owned_by::<NetworkSegment, _>(p.as_ref()))
        };
        let concerned = futures::stream::select_all([
            shared.policies.subscribe().filter_map(owner).boxed(),
            shared.tenancies.subscribe_when(crate::watch::spec_changed).flat_map(by_tenancy).boxed(),
            shared.namespaces.subscribe_when(crate::watch::labels_or_deletion).flat_map(by_namespace).boxed(),
        ])
        .boxed();
        Inputs {
            namespaces: shared.namespaces.store(),
            policies: shared.policies.store(),
            changed: shared.segments.subscribe_when(crate::watch::spec_changed).boxed(),
            any_changed: shared.segments.subscribe_when(crate::watch::spec_changed).map(|_| ()).boxed(),
            tenancies,
            segments,
            concerned,
        }
    }
}

/// Runs the NetworkSegment controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    inputs: Inputs,
    metrics: Metrics,
    recorder: Recorder,
    resync: Duration,
    cluster_networks: Vec<crate::reachability::Cidr>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Inputs { tenancies, segments, namespaces, policies, changed, any_changed, concerned } = inputs;
    let ctx = Arc::new(Context {
        client,
        tenancies,
        segments: segments.clone(),
        namespaces,
        policies,
        recorder,
        metrics,
        resync,
        cluster_networks,
    });
    let triggers = crate::drive::Triggers { changed, concerned, all: Some(any_changed) };
    crate::drive::run(segments, triggers, reconcile::reconcile, reconcile::error_policy, ctx, shutdown).await;
}

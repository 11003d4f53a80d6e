//! The Tenancy controller: an organisation's namespaces, owners' access, strict tenancy-wide
//! quota, container defaults, baseline isolation, suspension and expiry.

pub mod demand;
pub mod desired;
pub mod protection;
pub mod quota;
pub mod reconcile;
pub mod removal;
mod shares;
pub mod status;

#[cfg(test)]
pub mod fixtures;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use commons_crds::network_segment::NetworkSegment;
use commons_crds::tenancy::Tenancy;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::Client;
use kube::ResourceExt;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};

use crate::metrics::Metrics;
use crate::watch::owned_by;

/// Reflector stores of everything the controller reads.
#[derive(Clone)]
pub struct Stores {
    /// Every namespace (so a namespace that belongs to something else is seen).
    pub namespaces: Store<Namespace>,
    /// Commons-managed LimitRanges.
    pub limit_ranges: Store<LimitRange>,
    /// Commons-managed NetworkPolicies.
    pub network_policies: Store<NetworkPolicy>,
    /// Commons-managed RoleBindings.
    pub role_bindings: Store<RoleBinding>,
    /// Commons-managed ClusterRoles.
    pub cluster_roles: Store<ClusterRole>,
    /// Commons-managed ClusterRoleBindings.
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    /// Every NetworkSegment (to report which segments admit the tenancy).
    pub segments: Store<NetworkSegment>,
}

impl Stores {
    /// Waits until every store has had its first full list, so a reconcile never mistakes a
    /// store that is still filling for objects that are missing.
    pub async fn ready(&self) -> Result<(), crate::error::Error> {
        crate::watch::synced(&[
            &self.namespaces,
            &self.limit_ranges,
            &self.network_policies,
            &self.role_bindings,
            &self.cluster_roles,
            &self.cluster_role_bindings,
            &self.segments,
        ])
        .await
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").field("namespaces", &self.namespaces.len()).finish_non_exhaustive()
    }
}

/// What every reconcile can reach.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Reflector stores.
    pub stores: Stores,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// How often an unchanged Tenancy is reconciled again.
    pub resync: Duration,
    /// Refusals the quota webhook saw, which move free headroom to the refused namespace.
    pub demand: Arc<demand::Demand>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("stores", &self.stores).finish_non_exhaustive()
    }
}

/// Runs the Tenancy controller until `shutdown` resolves.
pub async fn run(
    watches: crate::watch::Watches,
    metrics: Metrics,
    recorder: Recorder,
    resync: Duration,
    demand: Arc<demand::Demand>,
    demand_triggers: futures::channel::mpsc::UnboundedReceiver<kube::runtime::reflector::ObjectRef<Tenancy>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = watches.client().clone();
    let (namespaces, ns_stream) = watches.reflect::<Namespace>(true);
    let (limit_ranges, lr_stream) = watches.reflect::<LimitRange>(false);
    let (network_policies, np_stream) = watches.reflect::<NetworkPolicy>(false);
    let (role_bindings, rb_stream) = watches.reflect::<RoleBinding>(false);
    let (cluster_roles, cr_stream) = watches.reflect::<ClusterRole>(false);
    let (cluster_role_bindings, crb_stream) = watches.reflect::<ClusterRoleBinding>(false);
    let (segments, seg_stream) = watches.reflect::<NetworkSegment>(true);
    // ResourceQuota changes (usage moving) trigger a rebalance; the quota step reads them fresh.
    let rq_stream = watches.events::<ResourceQuota>(crate::watch::managed_or_all(false)).touched_objects();

    let ctx = Arc::new(Context {
        client: client.clone(),
        stores: Stores {
            namespaces,
            limit_ranges,
            network_policies,
            role_bindings,
            cluster_roles,
            cluster_role_bindings,
            segments,
        },
        recorder,
        metrics: metrics.clone(),
        resync,
        demand,
    });
    // Children map to their Tenancy by controller owner reference. (`owns_stream` would key a
    // cluster-scoped owner by the child's namespace, so one Tenancy could be reconciled twice at
    // once; the quota algorithm relies on one reconcile per Tenancy at a time.)
    // A Tenancy is reconciled when what it asks for changes (not on Commons' own status writes),
    // when one of its children changes, when a segment it asks to join changes its spec, and when
    // its webhook saw demand.
    let (reader, writer) = kube::runtime::reflector::store();
    let main = watches
        .events::<Tenancy>(watcher::Config::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(crate::watch::spec_changed, Default::default());
    let requesting = {
        let tenancies = reader.clone();
        move |segment: NetworkSegment| {
            let name = segment.name_any();
            tenancies
                .state()
                .iter()
                .filter(|t| t.spec.network_segments.contains(&name))
                .map(|t| ObjectRef::new(&t.name_any()))
                .collect::<Vec<_>>()
        }
    };
    let controller = Controller::for_stream(main, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(crate::watch::CONCURRENCY))
        .watches_stream(ns_stream, owned_by::<Tenancy, _>)
        .watches_stream(lr_stream, owned_by::<Tenancy, _>)
        .watches_stream(np_stream, owned_by::<Tenancy, _>)
        .watches_stream(rb_stream, owned_by::<Tenancy, _>)
        .watches_stream(cr_stream, owned_by::<Tenancy, _>)
        .watches_stream(crb_stream, owned_by::<Tenancy, _>)
        .watches_stream(rq_stream, owned_by::<Tenancy, _>)
        // A segment's admission rules decide the membership the tenancies asking to join it report.
        .watches_stream(
            seg_stream.predicate_filter(crate::watch::spec_changed, Default::default()),
            requesting,
        )
        // A namespace refused by its quota share while the tenancy has headroom elsewhere.
        .reconcile_on(demand_triggers)
        .trigger_backoff(crate::watch::QuickBackoff::default())
        .graceful_shutdown_on(shutdown);
    let tenancies = controller.store();
    tokio::spawn(count_conditions(tenancies, metrics));
    controller
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile request failed");
            }
        })
        .await;
}

/// Keeps the `commons_tenancies{condition,status}` gauge in step with the Tenancy store.
async fn count_conditions(store: Store<Tenancy>, metrics: Metrics) {
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticker.tick().await;
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for t in store.state() {
            for c in t.status.iter().flat_map(|s| s.conditions.iter()) {
                *counts.entry((c.type_.clone(), c.status.clone())).or_default() += 1;
            }
        }
        metrics.tenancies.reset();
        for ((condition, status), n) in counts {
            metrics.tenancies.with_label_values(&[condition.as_str(), status.as_str()]).set(n);
        }
    }
}

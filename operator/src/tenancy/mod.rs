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

use crate::events::Recorder;
use commons_crds::network_segment::NetworkSegment;
use commons_crds::tenancy::Tenancy;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::Client;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::metrics::Metrics;
use crate::reflectors::{Reflector, Slim};
use crate::watch::owned_by;

/// Reflector stores of everything the controller reads.
#[derive(Clone)]
pub struct Stores {
    /// Every namespace (so a namespace that belongs to something else is seen).
    pub namespaces: Store<Namespace>,
    /// Commons-managed LimitRanges.
    pub limit_ranges: Store<Slim<LimitRange>>,
    /// Commons-managed NetworkPolicies.
    pub network_policies: Store<Slim<NetworkPolicy>>,
    /// Commons-managed RoleBindings.
    pub role_bindings: Store<Slim<RoleBinding>>,
    /// Commons-managed ClusterRoles.
    pub cluster_roles: Store<Slim<ClusterRole>>,
    /// Commons-managed ClusterRoleBindings.
    pub cluster_role_bindings: Store<Slim<ClusterRoleBinding>>,
    /// Every NetworkSegment (to report which segments admit the tenancy).
    pub segments: Store<NetworkSegment>,
    /// Commons-managed ResourceQuotas (each namespace's share).
    pub quotas: Store<Slim<ResourceQuota>>,
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
            &self.quotas,
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
    /// The status last written to each Tenancy, until the store shows it.
    pub written: Arc<crate::written::Written>,
    /// Each tenancy's spend this month, from the ledger.
    pub budgets: Arc<crate::metering::budgets::Budgets>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("stores", &self.stores).finish_non_exhaustive()
    }
}

/// What the Tenancy controller follows: taken from the shared reflectors before they start, with
/// watches of its own for the children only it reads.
pub struct Inputs {
    tenancies: Store<Tenancy>,
    stores: Stores,
    /// Tenancies whose spec (or annotations) changed.
    changed: BoxStream<'static, Arc<Tenancy>>,
    /// Tenancies a change elsewhere concerns: a child of theirs changed or went, a segment they
    /// ask to join changed its rules, or their webhook saw demand.
    concerned: BoxStream<'static, ObjectRef<Tenancy>>,
    /// The status last written to each Tenancy, forgotten as each is deleted.
    written: Arc<crate::written::Written>,
    /// Each tenancy's spend this month.
    budgets: Arc<crate::metering::budgets::Budgets>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs").field("stores", &self.stores).finish_non_exhaustive()
    }
}

impl Inputs {
    /// Subscribes to the shared reflectors and starts the controller's own watches. `demand` names
    /// the tenancies with a namespace refused by its quota share while headroom is free elsewhere;
    /// `spend` those whose figures in `budgets` changed.
    pub fn subscribe(
        shared: &mut crate::reflectors::Shared,
        watches: &crate::watch::Watches,
        demand: futures::channel::mpsc::UnboundedReceiver<ObjectRef<Tenancy>>,
        budgets: Arc<crate::metering::budgets::Budgets>,
        spend: futures::channel::mpsc::UnboundedReceiver<ObjectRef<Tenancy>>,
    ) -> Inputs {
        let managed = || crate::watch::managed_or_all(false);
        let mut limit_ranges = Reflector::<Slim<LimitRange>>::new(managed(), crate::reflectors::unread_meta);
        let mut role_bindings =
            Reflector::<Slim<RoleBinding>>::new(managed(), crate::reflectors::unread_meta);
        let mut cluster_roles =
            Reflector::<Slim<ClusterRole>>::new(managed(), crate::reflectors::unread_meta);
        let mut cluster_role_bindings =
            Reflector::<Slim<ClusterRoleBinding>>::new(managed(), crate::reflectors::unread_meta);
        let tenancies = shared.tenancies.store();
        let stores = Stores {
            namespaces: shared.namespaces.store(),
            limit_ranges: limit_ranges.store(),
            network_policies: shared.policies.store(),
            role_bindings: role_bindings.store(),
            cluster_roles: cluster_roles.store(),
            cluster_role_bindings: cluster_role_bindings.store(),
            segments: shared.segments.store(),
            quotas: shared.quotas.store(),
        };
        // Children map to their Tenancy by controller owner reference. (`owns_stream` would key a
        // cluster-scoped owner by the child's namespace, so one Tenancy could be reconciled twice
        // at once; the quota algorithm relies on one reconcile per Tenancy at a time.)
        fn owner<K: kube::Resource>(
            s: impl Stream<Item = Arc<K>> + Send + 'static,
        ) -> BoxStream<'static, ObjectRef<Tenancy>> {
            s.filter_map(|o| std::future::ready(owned_by::<Tenancy, K>(o.as_ref()))).boxed()
        }
        // A segment's admission rules decide the membership the tenancies asking to join it report.
        let requesting = {
            let tenancies = tenancies.clone();
            move |segment: Arc<NetworkSegment>| {
                let name = segment.name_any();
                let asking: Vec<ObjectRef<Tenancy>> = tenancies
                    .state()
                    .iter()
                    .filter(|t| t.spec.network_segments.contains(&name))
                    .map(|t| ObjectRef::new(&t.name_any()))
                    .collect();
                futures::stream::iter(asking)
            }
        };
        let concerned = futures::stream::select_all([
            owner(shared.namespaces.subscribe()),
            owner(limit_ranges.subscribe()),
            owner(shared.policies.subscribe()),
            owner(role_bindings.subscribe()),
            owner(cluster_roles.subscribe()),
            owner(cluster_role_bindings.subscribe()),
            // Usage moving triggers a rebalance; the quota step reads the quotas afresh.
            owner(shared.quotas.subscribe()),
            shared.segments.subscribe_when(crate::watch::spec_changed).flat_map(requesting).boxed(),
            demand.boxed(),
            spend.boxed(),
        ])
        .boxed();
        // A Tenancy is reconciled when what it asks for changes, not on Commons' own status writes.
        let changed = shared.tenancies.subscribe_when(crate::watch::spec_changed).boxed();
        limit_ranges.start(watches);
        role_bindings.start(watches);
        cluster_roles.start(watches);
        cluster_role_bindings.start(watches);
        let written = Arc::new(crate::written::Written::default());
        shared.tenancies.feed(crate::written::Written::forget_deleted(written.clone()));
        Inputs { tenancies, stores, changed, concerned, written, budgets }
    }
}

/// Runs the Tenancy controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    inputs: Inputs,
    metrics: Metrics,
    recorder: Recorder,
    resync: Duration,
    demand: Arc<demand::Demand>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Inputs { tenancies, stores, changed, concerned, written, budgets } = inputs;
    let ctx = Arc::new(Context {
        client,
        stores,
        recorder,
        metrics: metrics.clone(),
        resync,
        demand,
        written,
        budgets,
    });
    tokio::spawn(count_conditions(tenancies.clone(), metrics));
    let triggers = crate::drive::Triggers { changed, concerned, all: None };
    crate::drive::run(tenancies, triggers, reconcile::reconcile, reconcile::error_policy, ctx, shutdown)
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

//! The HostedService controller: an organisation's application, run as a Deployment, a Service, a
//! ServiceAccount and a PodDisruptionBudget in one of its tenancy's namespaces, admitted only
//! there and only at or below the tenancy's classification, scaled to zero while the tenancy is
//! suspended.

pub mod admit;
pub mod consumers;
pub mod desired;
pub mod reconcile;
pub mod status;

#[cfg(test)]
pub mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use crate::events::Recorder;
use commons_crds::hosted_service::HostedService;
use commons_crds::labels;
use commons_crds::subscription::Subscription;
use commons_crds::tenancy::Tenancy;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use crate::metrics::Metrics;
use crate::reflectors::Reflector;

/// What every reconcile can reach.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Every Tenancy.
    pub tenancies: Store<Tenancy>,
    /// Every Namespace.
    pub namespaces: Store<Namespace>,
    /// Commons' Deployments.
    pub deployments: Store<Deployment>,
    /// Commons' Services.
    pub services: Store<Service>,
    /// Commons' ServiceAccounts.
    pub service_accounts: Store<ServiceAccount>,
    /// Commons' PodDisruptionBudgets.
    pub disruption_budgets: Store<PodDisruptionBudget>,
    /// Commons' NetworkPolicies (a service's path from its consumers).
    pub policies: Store<crate::reflectors::Slim<NetworkPolicy>>,
    /// Every Subscription, by the service it names (`namespace/name`): a service's reconcile reads
    /// only its own subscriptions, however many name others.
    pub subscriptions: crate::admission::index::ByNamespace<Subscription>,
    /// Finds a subscription's parties.
    pub lookup: crate::subscription::parties::Lookup,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// How often an unchanged HostedService is reconciled again.
    pub resync: Duration,
    /// The status last written to each HostedService, until the store shows it.
    pub written: Arc<crate::written::Written>,
}

impl Context {
    /// Waits until every store has had its first full list.
    pub async fn ready(&self) -> crate::error::Result<()> {
        crate::watch::synced(&[
            &self.tenancies,
            &self.namespaces,
            &self.deployments,
            &self.services,
            &self.service_accounts,
            &self.disruption_budgets,
            &self.policies,
            &self.lookup.hosted,
        ])
        .await?;
        // The index follows the same watch as the shared store, a moment behind it.
        for _ in 0..300 {
            if self.subscriptions.synced() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(crate::error::Error::StoreNotReady)
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("deployments", &self.deployments.len()).finish_non_exhaustive()
    }
}

/// What the HostedService controller follows, taken from the shared reflectors before they start,
/// with watches of its own for its children.
pub struct Inputs {
    hosted: Store<HostedService>,
    context: Context,
    changed: BoxStream<'static, Arc<HostedService>>,
    concerned: BoxStream<'static, ObjectRef<HostedService>>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs").field("hosted", &self.hosted.len()).finish_non_exhaustive()
    }
}

/// The service a subscription names, as `namespace/name`.
pub fn target_key(sub: &Subscription) -> Option<String> {
    Some(format!("{}/{}", sub.spec.service.namespace, sub.spec.service.name))
}

/// The HostedService that controls a namespaced child.
fn owner<K: Resource>(child: &K) -> Option<ObjectRef<HostedService>> {
    let ns = child.namespace()?;
    crate::watch::owned_by::<HostedService, K>(child).map(|o| o.within(&ns))
}

/// Of a Deployment the controller reads its spec, its status, its generation and its owner.
fn strip_deployment(d: &mut Deployment) {
    let generation = d.metadata.generation;
    crate::reflectors::unread_meta(d);
    d.metadata.generation = generation;
    d.metadata.annotations = None;
}

impl Inputs {
    /// Subscribes to the shared reflectors and starts the controller's own watches.
    pub fn subscribe(
        shared: &mut crate::reflectors::Shared,
        watches: &crate::watch::Watches,
        client: Client,
        recorder: Recorder,
        metrics: Metrics,
        resync: Duration,
    ) -> Inputs {
        let managed = || crate::watch::managed_or_all(false);
        let mut deployments = Reflector::<Deployment>::new(managed(), strip_deployment);
        let mut services = Reflector::<Service>::new(managed(), crate::reflectors::unread_meta);
        let mut service_accounts =
            Reflector::<ServiceAccount>::new(managed(), crate::reflectors::unread_meta);
        let mut budgets = Reflector::<PodDisruptionBudget>::new(managed(), crate::reflectors::unread_meta);
        let store = shared.hosted.store();
        let namespaces = shared.namespaces.store();
        // A tenancy's suspension or classification concerns every service in its namespaces.
        let in_tenancy = {
            let (store, namespaces) = (store.clone(), namespaces.clone());
            move |t: Arc<Tenancy>| {
                let name = t.name_any();
                let services: Vec<ObjectRef<HostedService>> = store
                    .state()
                    .iter()
                    .filter(|hs| {
                        let ns = hs.namespace().unwrap_or_default();
                        namespaces
                            .get(&ObjectRef::new(&ns))
                            .is_some_and(|n| n.labels().get(labels::TENANCY) == Some(&name))
                    })
                    .map(|hs| ObjectRef::from_obj(hs.as_ref()))
                    .collect();
                futures::stream::iter(services)
            }
        };
        // A namespace joining or leaving a tenancy concerns the services in it.
        let in_namespace = {
            let store = store.clone();
            move |ns: Arc<Namespace>| {
                let name = ns.name_any();
                let services: Vec<ObjectRef<HostedService>> = store
                    .state()
                    .iter()
                    .filter(|hs| hs.namespace().as_deref() == Some(name.as_str()))
                    .map(|hs| ObjectRef::from_obj(hs.as_ref()))
                    .collect();
                futures::stream::iter(services)
            }
        };
        fn owners<K: Resource + Send + Sync + 'static>(
            s: impl futures::Stream<Item = Arc<K>> + Send + 'static,
        ) -> BoxStream<'static, ObjectRef<HostedService>> {
            s.filter_map(|o| std::future::ready(owner(o.as_ref()))).boxed()
        }
        // A subscription concerns the service it names (its provider opens or closes the path).
        let named = |s: Arc<Subscription>| {
            let target = &s.spec.service;
            std::future::ready(Some(ObjectRef::<HostedService>::new(&target.name).within(&target.namespace)))
        };
        let concerned = futures::stream::select_all([
            shared.subscriptions.subscribe().filter_map(named).boxed(),
            owners(shared.policies.subscribe()),
            owners(deployments.subscribe()),
            owners(services.subscribe()),
            owners(service_accounts.subscribe()),
            owners(budgets.subscribe()),
            shared
                .tenancies
                .subscribe_when(crate::subscription::parties::tenancy_changed)
                .flat_map(in_tenancy)
                .boxed(),
            shared.namespaces.subscribe_when(crate::watch::labels_or_deletion).flat_map(in_namespace).boxed(),
        ])
        .boxed();
        let changed = shared.hosted.subscribe_when(crate::watch::spec_changed).boxed();
        let context = Context {
            client,
            tenancies: shared.tenancies.store(),
            lookup: crate::subscription::parties::Lookup {
                tenancies: shared.tenancies.store(),
                namespaces: namespaces.clone(),
                hosted: store.clone(),
            },
            policies: shared.policies.store(),
            subscriptions: {
                let by_target = crate::admission::index::ByNamespace::grouped_by(target_key);
                let index = by_target.clone();
                shared.subscriptions.feed(Box::new(move |event| index.apply(event)));
                by_target
            },
            namespaces,
            deployments: deployments.store(),
            services: services.store(),
            service_accounts: service_accounts.store(),
            disruption_budgets: budgets.store(),
            recorder,
            metrics,
            resync,
            written: {
                let written = Arc::new(crate::written::Written::default());
                shared.hosted.feed(crate::written::Written::forget_deleted(written.clone()));
                written
            },
        };
        deployments.start(watches);
        services.start(watches);
        service_accounts.start(watches);
        budgets.start(watches);
        Inputs { hosted: store, context, changed, concerned }
    }
}

/// Runs the HostedService controller until `shutdown` resolves.
pub async fn run(inputs: Inputs, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let Inputs { hosted, context, changed, concerned } = inputs;
    let triggers = crate::drive::Triggers { changed, concerned, all: None };
    crate::drive::run(
        hosted,
        triggers,
        reconcile::reconcile,
        reconcile::error_policy,
        Arc::new(context),
        shutdown,
    )
    .await;
}

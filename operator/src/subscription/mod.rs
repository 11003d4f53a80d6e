//! The Subscription controller: the consumer's side of sharing. It decides (with the one consent
//! function the provider's controller also asks) whether a subscription is Active, opens the path
//! out of the consumer's namespace to the service's pods, or makes the consumer's own instance of
//! a published service, and records activation and ending in the status and in Events.

pub mod consent;
pub mod desired;
pub mod parties;
pub mod reconcile;

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
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use crate::metrics::Metrics;

/// What every reconcile can reach.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Finds a subscription's parties.
    pub lookup: parties::Lookup,
    /// Commons' NetworkPolicies (the consumer's path out).
    pub policies: Store<crate::reflectors::Slim<NetworkPolicy>>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// How often an unchanged Subscription is reconciled again.
    pub resync: Duration,
    /// The status last written to each Subscription, until the store shows it.
    pub written: Arc<crate::written::Written>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("lookup", &self.lookup).finish_non_exhaustive()
    }
}

/// What the Subscription controller follows, taken from the shared reflectors before they start.
pub struct Inputs {
    subscriptions: Store<Subscription>,
    context: Context,
    changed: BoxStream<'static, Arc<Subscription>>,
    concerned: BoxStream<'static, ObjectRef<Subscription>>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs").field("subscriptions", &self.subscriptions.len()).finish_non_exhaustive()
    }
}

/// The subscriptions among `subs` that `pick` selects, as references.
fn refs(
    subs: &Store<Subscription>,
    pick: impl Fn(&Subscription) -> bool,
) -> futures::stream::Iter<std::vec::IntoIter<ObjectRef<Subscription>>> {
    let found: Vec<ObjectRef<Subscription>> =
        subs.state().iter().filter(|s| pick(s)).map(|s| ObjectRef::from_obj(s.as_ref())).collect();
    futures::stream::iter(found)
}

impl Inputs {
    /// Subscribes to the shared reflectors.
    pub fn subscribe(
        shared: &mut crate::reflectors::Shared,
        client: Client,
        recorder: Recorder,
        metrics: Metrics,
        resync: Duration,
    ) -> Inputs {
        let subs = shared.subscriptions.store();
        let namespaces = shared.namespaces.store();
        // A service changing (its consumers list, its readiness, publication) concerns the
        // subscriptions that name it.
        let naming = {
            let subs = subs.clone();
            move |hs: Arc<HostedService>| {
                let (ns, name) = (hs.namespace().unwrap_or_default(), hs.name_any());
                refs(&subs, |s| s.spec.service.namespace == ns && s.spec.service.name == name)
            }
        };
        // A tenancy's classification or suspension concerns the subscriptions made from its
        // namespaces or to services in them.
        let of_tenancy = {
            let (subs, namespaces) = (subs.clone(), namespaces.clone());
            move |t: Arc<Tenancy>| {
                let name = t.name_any();
                let belongs = |ns: &str| {
                    namespaces
                        .get(&ObjectRef::new(ns))
                        .is_some_and(|n| n.labels().get(labels::TENANCY) == Some(&name))
                };
                refs(&subs, |s| {
                    belongs(&s.namespace().unwrap_or_default()) || belongs(&s.spec.service.namespace)
                })
            }
        };
        let in_namespace = {
            let subs = subs.clone();
            move |n: Arc<Namespace>| {
                let name = n.name_any();
                refs(&subs, |s| {
                    s.namespace().as_deref() == Some(name.as_str()) || s.spec.service.namespace == name
                })
            }
        };
        fn owner<K: Resource>(child: &K) -> Option<ObjectRef<Subscription>> {
            let ns = child.namespace()?;
            crate::watch::owned_by::<Subscription, K>(child).map(|o| o.within(&ns))
        }
        let concerned = futures::stream::select_all([
            shared.hosted.subscribe().flat_map(naming).boxed(),
            // An instance (a HostedService it owns) changing concerns its subscription.
            shared.hosted.subscribe().filter_map(|hs| std::future::ready(owner(hs.as_ref()))).boxed(),
            shared.policies.subscribe().filter_map(|p| std::future::ready(owner(p.as_ref()))).boxed(),
            shared.tenancies.subscribe_when(parties::tenancy_changed).flat_map(of_tenancy).boxed(),
            shared.namespaces.subscribe_when(crate::watch::labels_or_deletion).flat_map(in_namespace).boxed(),
        ])
        .boxed();
        // A subscription deleted while Active ended by its consumer's choice: the Event records
        // when (the object, and so its status, is gone).
        let endings = recorder.clone();
        shared.subscriptions.feed(Box::new(move |event| {
            if let kube::runtime::watcher::Event::Delete(sub) = event
                && sub.status.as_ref().and_then(|s| s.phase)
                    == Some(commons_crds::subscription::SubscriptionPhase::Active)
            {
                let (recorder, sub) = (endings.clone(), sub.clone());
                tokio::spawn(async move { reconcile::announce_deleted(&recorder, &sub).await });
            }
        }));
        let context = Context {
            client,
            lookup: parties::Lookup {
                tenancies: shared.tenancies.store(),
                namespaces,
                hosted: shared.hosted.store(),
            },
            policies: shared.policies.store(),
            recorder,
            metrics,
            resync,
            written: {
                let written = Arc::new(crate::written::Written::default());
                shared.subscriptions.feed(crate::written::Written::forget_deleted(written.clone()));
                written
            },
        };
        let changed = shared.subscriptions.subscribe_when(crate::watch::spec_changed).boxed();
        Inputs { subscriptions: subs, context, changed, concerned }
    }
}

/// Runs the Subscription controller until `shutdown` resolves.
pub async fn run(inputs: Inputs, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let Inputs { subscriptions, context, changed, concerned } = inputs;
    let triggers = crate::drive::Triggers { changed, concerned, all: None };
    crate::drive::run(
        subscriptions,
        triggers,
        reconcile::reconcile,
        reconcile::error_policy,
        Arc::new(context),
        shutdown,
    )
    .await;
}

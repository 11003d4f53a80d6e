//! The watches the quota check counts from, each stripped to what counting reads.

use commons_crds::labels;
use commons_crds::tenancy::Tenancy;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, ResourceQuota, Service};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Resource;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

use super::index::ByNamespace;
use super::usage;
use crate::watch::Synced;

/// The watches the quota check counts from.
#[derive(Clone)]
pub(super) struct Stores {
    pub(super) tenancies: Store<Tenancy>,
    pub(super) namespaces: Store<Namespace>,
    /// The same namespaces by their tenancy label, so a decision reads only its tenancy's.
    pub(super) by_tenancy: ByNamespace<Namespace>,
    pub(super) pods: ByNamespace<Pod>,
    pub(super) claims: ByNamespace<PersistentVolumeClaim>,
    pub(super) services: ByNamespace<Service>,
    pub(super) quotas: Store<crate::reflectors::Slim<ResourceQuota>>,
    /// For the cluster's global default class, which pods get when they name none.
    pub(super) priority_classes: Store<PriorityClass>,
    /// Every HostedService (a Subscription's instance needs a published one).
    pub(super) hosted: Store<commons_crds::hosted_service::HostedService>,
}

impl Stores {
    /// Takes the tenancies, namespaces and quotas from the shared reflectors (to be started by the
    /// caller) and starts the watches only the webhook reads, each until `stop`.
    pub(super) fn start(
        watches: &crate::watch::Watches,
        shared: &mut crate::reflectors::Shared,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Stores {
        // Only Commons' own namespaces belong to a tenancy.
        let by_tenancy = ByNamespace::grouped_by(|ns: &Namespace| {
            if !crate::watch::is_managed(ns) {
                return None;
            }
            ns.metadata.labels.as_ref()?.get(labels::TENANCY).cloned()
        });
        // The index keeps of each namespace only its name and tenancy (it is read for names).
        let index = by_tenancy.clone();
        shared.namespaces.feed(Box::new(move |event| index.apply(&event.clone().modify(name_and_tenancy))));
        Stores {
            tenancies: shared.tenancies.store(),
            namespaces: shared.namespaces.store(),
            by_tenancy,
            pods: start_indexed_watch(watches, strip_pod, stop.clone()),
            claims: start_indexed_watch(watches, strip_meta::<PersistentVolumeClaim>, stop.clone()),
            services: start_indexed_watch(watches, strip_meta::<Service>, stop.clone()),
            quotas: shared.quotas.store(),
            priority_classes: start_watch(watches, strip_meta::<PriorityClass>, stop.clone()),
            hosted: shared.hosted.store(),
        }
    }

    pub(super) fn synced(&self) -> bool {
        [
            self.tenancies.synced(),
            self.namespaces.synced(),
            Some(self.pods.synced()),
            Some(self.claims.synced()),
            Some(self.services.synced()),
            self.quotas.synced(),
            self.priority_classes.synced(),
            self.hosted.synced(),
        ]
        .iter()
        .all(|s| *s == Some(true))
    }
}

/// Starts a watch of every `K` the quota check needs, until `stop`; the store fills in the
/// background (the check refuses, asking to retry, until it has).
fn start_watch<K>(
    watches: &crate::watch::Watches,
    strip: fn(&mut K),
    stop: tokio::sync::watch::Receiver<bool>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watches
        .events::<K>(watcher::Config::default())
        .modify(strip)
        .reflect(writer)
        .take_until(crate::shutdown::stopped(stop));
    tokio::spawn(async move {
        stream
            .for_each(|r| {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "admission watch error");
                }
                std::future::ready(())
            })
            .await;
    });
    store
}

/// Starts a watch that keeps its objects by namespace, until `shutdown`.
fn start_indexed_watch<K>(
    watches: &crate::watch::Watches,
    strip: fn(&mut K),
    stop: tokio::sync::watch::Receiver<bool>,
) -> ByNamespace<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let index = ByNamespace::default();
    let stream = watches
        .events::<K>(watcher::Config::default())
        .modify(strip)
        .take_until(crate::shutdown::stopped(stop));
    let writer = index.clone();
    tokio::spawn(async move {
        stream
            .for_each(|r| {
                match r {
                    Ok(event) => writer.apply(&event),
                    Err(e) => tracing::debug!(error = %e, "admission watch error"),
                }
                std::future::ready(())
            })
            .await;
    });
    index
}

/// Keeps only what counting needs: the pods of a large cluster are held in memory.
fn strip_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    pod.metadata.labels = None;
    pod.metadata.owner_references = None;
    if let Some(spec) = pod.spec.as_mut() {
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            c.env = None;
            c.env_from = None;
            c.args = None;
            c.command = None;
            c.volume_mounts = None;
            c.ports = None;
            c.liveness_probe = None;
            c.readiness_probe = None;
            c.startup_probe = None;
        }
        spec.volumes = None;
        spec.affinity = None;
        spec.tolerations = None;
    }
    if let Some(status) = pod.status.as_mut() {
        // What counting reads: the phase, and what an in-place resize under way has allocated and
        // runs (usage::pod).
        let kept = k8s_openapi::api::core::v1::PodStatus {
            phase: status.phase.take(),
            conditions: status
                .conditions
                .take()
                .map(|cs| cs.into_iter().filter(|c| c.type_ == usage::RESIZE_PENDING).collect::<Vec<_>>())
                .filter(|cs| !cs.is_empty()),
            container_statuses: status.container_statuses.take().map(strip_container_statuses),
            init_container_statuses: status.init_container_statuses.take().map(strip_container_statuses),
            ..Default::default()
        };
        *status = kept;
    }
}

fn strip_container_statuses(
    statuses: Vec<k8s_openapi::api::core::v1::ContainerStatus>,
) -> Vec<k8s_openapi::api::core::v1::ContainerStatus> {
    statuses
        .into_iter()
        .filter(|cs| cs.resources.is_some() || cs.allocated_resources.is_some())
        .map(|cs| k8s_openapi::api::core::v1::ContainerStatus {
            name: cs.name,
            allocated_resources: cs.allocated_resources,
            resources: cs.resources.map(|r| k8s_openapi::api::core::v1::ResourceRequirements {
                requests: r.requests,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// A namespace reduced to its name and the labels that place it in a tenancy.
fn name_and_tenancy(ns: &mut Namespace) {
    let kept = [labels::MANAGED_BY, labels::TENANCY];
    let labels = ns
        .metadata
        .labels
        .take()
        .map(|l| l.into_iter().filter(|(k, _)| kept.contains(&k.as_str())).collect());
    *ns = Namespace {
        metadata: kube::api::ObjectMeta { name: ns.metadata.name.take(), labels, ..Default::default() },
        ..Namespace::default()
    };
}

fn strip_meta<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_index_keeps_a_name_and_a_tenancy_only() {
        let mut ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some("t-app".into()),
                uid: Some("uid".into()),
                labels: Some(
                    [
                        (labels::TENANCY.to_owned(), "t".to_owned()),
                        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
                        ("team".to_owned(), "x".to_owned()),
                    ]
                    .into(),
                ),
                annotations: Some([("note".to_owned(), "y".to_owned())].into()),
                ..Default::default()
            },
            ..Namespace::default()
        };
        name_and_tenancy(&mut ns);
        assert_eq!(ns.metadata.name.as_deref(), Some("t-app"));
        assert_eq!(ns.metadata.labels.as_ref().map(|l| l.len()), Some(2));
        assert!(ns.metadata.uid.is_none() && ns.metadata.annotations.is_none());
        let index = ByNamespace::grouped_by(|ns: &Namespace| {
            crate::watch::is_managed(ns)
                .then(|| ns.metadata.labels.as_ref()?.get(labels::TENANCY).cloned())?
        });
        index.apply(&kube::runtime::watcher::Event::Apply(ns));
        assert_eq!(index.in_group("t").len(), 1, "still grouped by its tenancy");
    }
}

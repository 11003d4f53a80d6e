//! The applications store and the subscriptions for the REST API, read from the shared stores
//! with the same function `commons catalogue` prints.

use std::sync::Arc;

use commons_api::v1::catalogue::{CatalogueEntry, CatalogueSource, SubscriptionView};
use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::Subscription;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

/// The shared stores the catalogue is read from.
#[derive(Clone)]
pub struct StoreCatalogue {
    /// Every HostedService.
    pub hosted: Store<HostedService>,
    /// Every Subscription.
    pub subscriptions: Store<Subscription>,
    /// Every Namespace (labels and owners).
    pub namespaces: Store<Namespace>,
    /// Every Tenancy.
    pub tenancies: Store<Tenancy>,
}

impl std::fmt::Debug for StoreCatalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCatalogue").field("hosted", &self.hosted.len()).finish_non_exhaustive()
    }
}

impl StoreCatalogue {
    fn tenancy_of(&self, namespace: &str) -> Option<Arc<Tenancy>> {
        let ns = self.namespaces.get(&ObjectRef::new(namespace))?;
        let name = crate::hosted::admit::tenancy_of(&ns)?;
        self.tenancies.get(&ObjectRef::new(&name))
    }
}

impl CatalogueSource for StoreCatalogue {
    fn entries(&self) -> Vec<CatalogueEntry> {
        crate::catalogue::entries(&self.hosted.state(), &self.subscriptions.state(), |ns| self.tenancy_of(ns))
    }

    fn subscriptions(&self) -> Vec<SubscriptionView> {
        let mut out: Vec<SubscriptionView> = self
            .subscriptions
            .state()
            .iter()
            .map(|s| {
                let namespace = s.namespace().unwrap_or_default();
                let tenancy = self.tenancy_of(&namespace);
                let status = s.status.clone().unwrap_or_default();
                SubscriptionView {
                    name: s.name_any(),
                    tenancy: tenancy.as_ref().map(|t| t.name_any()).unwrap_or_default(),
                    organisation: tenancy
                        .as_ref()
                        .map(|t| t.spec.organisation.id.clone())
                        .unwrap_or_default(),
                    service: format!("{}/{}", s.spec.service.namespace, s.spec.service.name),
                    mode: wire(&s.spec.mode),
                    phase: status.phase.as_ref().map(wire),
                    reason: status.reason,
                    message: status.message,
                    endpoint: status.endpoint,
                    namespace,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out
    }

    fn organisation_of(&self, namespace: &str) -> Option<String> {
        self.tenancy_of(namespace).map(|t| t.spec.organisation.id.clone())
    }
}

/// A serialisable enum's wire form, as text.
fn wire<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

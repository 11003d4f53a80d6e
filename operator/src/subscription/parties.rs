//! Finding a subscription's parties in the shared stores: the consumer's tenancy, the service and
//! the provider's tenancy, each by Commons' own ownership of the namespaces involved.

use std::sync::Arc;

use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::Subscription;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::consent::Parties;
use crate::hosted::admit::tenancy_of;
use crate::tenancy::status::{Suspension, expiry};

/// A trigger key for the Tenancies the hosted service and subscription controllers follow: what
/// they read of a tenancy changes with its spec (classification, suspension), its deletion, and its
/// passing its expiry date, which the Tenancy controller records in its Suspended condition (so a
/// tenancy's services stop at expiry, not at the next resync).
pub fn tenancy_changed(t: &Tenancy) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let suspended = t
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == crate::tenancy::status::types::SUSPENDED))
        .map(|c| (c.status.clone(), c.reason.clone()));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (crate::watch::spec_changed(t), suspended).hash(&mut h);
    Some(h.finish())
}

/// The stores a subscription's parties are found in.
#[derive(Clone)]
pub struct Lookup {
    /// Every Tenancy.
    pub tenancies: Store<Tenancy>,
    /// Every Namespace.
    pub namespaces: Store<Namespace>,
    /// Every HostedService.
    pub hosted: Store<HostedService>,
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup").field("hosted", &self.hosted.len()).finish_non_exhaustive()
    }
}

impl Lookup {
    /// The live (not deleted) tenancy namespace `ns` belongs to.
    pub fn tenancy_of(&self, ns: &str) -> Option<Arc<Tenancy>> {
        let namespace = self.namespaces.get(&ObjectRef::new(ns))?;
        let name = tenancy_of(&namespace)?;
        self.tenancies.get(&ObjectRef::new(&name)).filter(|t| t.metadata.deletion_timestamp.is_none())
    }

    /// Everything the consent decision on `sub` reads.
    pub fn parties(&self, sub: &Subscription) -> Parties {
        let target = &sub.spec.service;
        let provider = self.tenancy_of(&target.namespace);
        Parties {
            consumer: self.tenancy_of(&sub.namespace().unwrap_or_default()),
            service: self.hosted.get(&ObjectRef::new(&target.name).within(&target.namespace)),
            provider_suspended: provider.as_ref().is_some_and(|t| {
                Suspension::of(t, expiry(jiff::Timestamp::now(), t.spec.expires_at.as_ref()).0).is_some()
            }),
            provider,
        }
    }
}

//! Checking a Subscription as it is made: what no schema rule can see because it needs another
//! object (the request's namespace, the service named, the tenancies of both). The same rules are
//! decided again by the Subscription controller (`subscription::consent`), which also catches a
//! service unpublished after the subscription was made.

use commons_crds::subscription::{Subscription, SubscriptionMode};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::runtime::reflector::ObjectRef;

use super::Admission;
use crate::hosted::admit::tenancy_of;
use crate::watch::Synced;

impl Admission {
    /// `Some(why)` when the Subscription is refused.
    pub(super) fn check_subscription(&self, req: &AdmissionRequest<DynamicObject>) -> Option<String> {
        // What it names and how are fixed once made (CEL), so checking the creation is enough; an
        // instance whose original is unpublished later can still be edited.
        if req.operation != Operation::Create {
            return None;
        }
        if self.stores.namespaces.synced() != Some(true) || self.stores.hosted.synced() != Some(true) {
            return Some(
                "Commons is starting and cannot check the Subscription yet; try again in a few seconds"
                    .into(),
            );
        }
        let object = serde_json::to_value(req.object.as_ref()?).ok()?;
        let sub: Subscription = match serde_json::from_value(object) {
            Ok(sub) => sub,
            Err(e) => return Some(format!("the Subscription cannot be read: {e}")),
        };
        let own = req.namespace.clone().unwrap_or_default();
        let target = &sub.spec.service;
        let tenancy = |ns: &str| self.stores.namespaces.get(&ObjectRef::new(ns)).and_then(|n| tenancy_of(&n));
        if target.namespace == own {
            return Some(format!(
                "spec.service.namespace: {own} is this Subscription's own namespace; a namespace reaches its own services without a subscription"
            ));
        }
        let service = self.stores.hosted.get(&ObjectRef::new(&target.name).within(&target.namespace));
        match sub.spec.mode {
            SubscriptionMode::Shared => match (tenancy(&own), tenancy(&target.namespace)) {
                (Some(a), Some(b)) if a == b => Some(format!(
                    "spec.service.namespace: {} belongs to this Subscription's own tenancy {a}, which reaches its services without a subscription",
                    target.namespace
                )),
                _ => None,
            },
            SubscriptionMode::Instance => match service {
                Some(hs) if !hs.spec.catalogue.as_ref().is_some_and(|c| c.publish) => Some(format!(
                    "spec.mode: an instance needs a service published in the catalogue (spec.catalogue.publish); {}/{} is not published",
                    target.namespace, target.name
                )),
                _ => None,
            },
        }
    }
}

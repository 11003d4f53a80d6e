//! The kinds more than one part of Commons reads, each watched once. Each keeps what any of its
//! readers reads, and nothing else:
//!
//! | kind | read by | kept |
//! | --- | --- | --- |
//! | Tenancy | tenancy controller (all), segments and webhook (spec) | all |
//! | Namespace, every one | tenancy controller (a name taken by something else), segments and webhook (Commons' own) | metadata without annotations |
//! | NetworkSegment | tenancy and segment controllers | all |
//! | NetworkPolicy, Commons' own | tenancy and segment controllers | all but [`super::unread_meta`], as a [`Slim`] |
//! | ResourceQuota, Commons' own | tenancy controller (changes only), webhook (hard and used) | all but [`super::unread_meta`], as a [`Slim`] |
//! | HostedService | hosted service and subscription controllers, webhook (subscriptions) | all |
//! | Subscription | hosted service and subscription controllers | all |
//! | TenancyRequest | request controller, the API | all |
//! | RateCard, VatRate | the API (usage, reports, forecasts) | all |
//!
//! `managedFields` and client-side apply's copy of the object are never kept (see [`Reflector`]).

use commons_crds::hosted_service::HostedService;
use commons_crds::network_segment::NetworkSegment;
use commons_crds::subscription::Subscription;
use commons_crds::tenancy::Tenancy;
use commons_crds::tenancy_request::TenancyRequest;
use commons_crds::{RateCard, VatRate};
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::watcher;

use super::{Reflector, Slim};
use crate::watch::managed_or_all;

/// The shared reflectors, set up: subscribe, then [`Shared::start`].
#[derive(Debug)]
pub struct Shared {
    /// Every Tenancy.
    pub tenancies: Reflector<Tenancy>,
    /// Every Namespace: a tenancy's namespace may be taken by something else.
    pub namespaces: Reflector<Namespace>,
    /// Every NetworkSegment.
    pub segments: Reflector<NetworkSegment>,
    /// Commons' NetworkPolicies (baseline and segment paths).
    pub policies: Reflector<Slim<NetworkPolicy>>,
    /// Commons' ResourceQuotas (each namespace's share).
    pub quotas: Reflector<Slim<ResourceQuota>>,
    /// Every HostedService.
    pub hosted: Reflector<HostedService>,
    /// Every Subscription.
    pub subscriptions: Reflector<Subscription>,
    /// Every TenancyRequest.
    pub requests: Reflector<TenancyRequest>,
    /// Every RateCard (what the API prices with).
    pub rate_cards: Reflector<RateCard>,
    /// Every VatRate.
    pub vat_rates: Reflector<VatRate>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

impl Shared {
    /// Sets up every shared reflector.
    pub fn new() -> Shared {
        Shared {
            tenancies: Reflector::new(watcher::Config::default(), |_| {}),
            namespaces: Reflector::new(watcher::Config::default(), strip_namespace),
            segments: Reflector::new(watcher::Config::default(), |_| {}),
            policies: Reflector::new(managed_or_all(false), super::unread_meta),
            quotas: Reflector::new(managed_or_all(false), super::unread_meta),
            hosted: Reflector::new(watcher::Config::default(), |_| {}),
            subscriptions: Reflector::new(watcher::Config::default(), |_| {}),
            requests: Reflector::new(watcher::Config::default(), |_| {}),
            rate_cards: Reflector::new(watcher::Config::default(), |_| {}),
            vat_rates: Reflector::new(watcher::Config::default(), |_| {}),
        }
    }

    /// Starts every watch.
    pub fn start(self, watches: &crate::watch::Watches) {
        self.tenancies.start(watches);
        self.namespaces.start(watches);
        self.segments.start(watches);
        self.policies.start(watches);
        self.quotas.start(watches);
        self.hosted.start(watches);
        self.subscriptions.start(watches);
        self.requests.start(watches);
        self.rate_cards.start(watches);
        self.vat_rates.start(watches);
    }
}

/// Of a namespace Commons reads its name, labels, owner and whether it is being deleted.
fn strip_namespace(ns: &mut Namespace) {
    ns.spec = None;
    ns.status = None;
    ns.metadata.annotations = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    #[test]
    fn a_namespace_keeps_what_the_controllers_and_the_webhook_read() {
        let mut ns = Namespace {
            metadata: ObjectMeta {
                name: Some("t-app".into()),
                labels: Some([("commons.dev/tenancy".to_owned(), "t".to_owned())].into()),
                annotations: Some([("note".to_owned(), "x".to_owned())].into()),
                deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::UNIX_EPOCH,
                )),
                ..ObjectMeta::default()
            },
            spec: Some(Default::default()),
            status: Some(Default::default()),
        };
        strip_namespace(&mut ns);
        assert_eq!((ns.spec, ns.status, ns.metadata.annotations), (None, None, None));
        assert!(ns.metadata.labels.is_some() && ns.metadata.deletion_timestamp.is_some());
    }
}

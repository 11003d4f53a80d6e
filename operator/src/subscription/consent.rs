//! Whether a Subscription may be Active (pure): consent on both sides, and clearance.
//!
//! Shared use needs the provider to list the consumer's tenancy (`spec.sharing.consumers`) and
//! the consumer's tenancy to be cleared at least to the service's classification. An instance
//! needs only that the service is published. The provider's controller (which opens the path
//! into its pods) and the consumer's (which opens the path out, and writes the status) both ask
//! this one function, so neither trusts a status anyone could write.

use std::sync::Arc;

use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::{Subscription, SubscriptionMode, SubscriptionPhase};
use commons_crds::tenancy::Tenancy;
use kube::ResourceExt;

/// Why a subscription is not Active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The provider does not list the consumer's tenancy.
    NotListed,
    /// The consumer's tenancy is cleared below the service's classification.
    ClassificationTooLow,
    /// No such HostedService.
    ServiceNotFound,
    /// The service is not admitted in its own tenancy (so not running).
    ServiceNotAdmitted,
    /// The provider's tenancy is suspended.
    ProviderSuspended,
    /// An instance was asked of a service not published in the catalogue.
    NotPublished,
    /// The subscription's namespace does not belong to a tenancy.
    ConsumerNotInTenancy,
    /// The service belongs to the subscription's own tenancy, which reaches it already.
    SameTenancy,
    /// The instance's name is taken by another HostedService.
    NameTaken,
}

impl Reason {
    /// The reason as `status.reason` carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotListed => "NotListed",
            Reason::ClassificationTooLow => "ClassificationTooLow",
            Reason::ServiceNotFound => "ServiceNotFound",
            Reason::ServiceNotAdmitted => "ServiceNotAdmitted",
            Reason::ProviderSuspended => "ProviderSuspended",
            Reason::NotPublished => "NotPublished",
            Reason::ConsumerNotInTenancy => "ConsumerNotInTenancy",
            Reason::SameTenancy => "SameTenancy",
            Reason::NameTaken => "NameTaken",
        }
    }

    /// Whether the consumer can wait it out (Pending) or must change something (Refused).
    fn waits(self) -> bool {
        matches!(
            self,
            Reason::NotListed
                | Reason::ServiceNotFound
                | Reason::ServiceNotAdmitted
                | Reason::ProviderSuspended
                | Reason::NameTaken
        )
    }
}

/// The decision on one subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// In use.
    Active,
    /// Not in use, and why.
    Not(Reason, String),
}

/// What the decision reads, found from the stores.
#[derive(Clone, Debug, Default)]
pub struct Parties {
    /// The tenancy of the subscription's namespace.
    pub consumer: Option<Arc<Tenancy>>,
    /// The HostedService named.
    pub service: Option<Arc<HostedService>>,
    /// The tenancy of the service's namespace.
    pub provider: Option<Arc<Tenancy>>,
    /// Whether the provider's tenancy is suspended (or expired).
    pub provider_suspended: bool,
}

fn not(reason: Reason, message: String) -> Verdict {
    Verdict::Not(reason, message)
}

/// Whether `sub` may be Active, given its `parties`.
pub fn decide(sub: &Subscription, parties: &Parties) -> Verdict {
    let target = format!("{}/{}", sub.spec.service.namespace, sub.spec.service.name);
    let own_ns = sub.namespace().unwrap_or_default();
    let Some(consumer) = parties.consumer.as_ref() else {
        return not(
            Reason::ConsumerNotInTenancy,
            format!(
                "namespace {own_ns} does not belong to a Tenancy; subscribe from one of your tenancy's namespaces"
            ),
        );
    };
    let Some(service) = parties.service.as_ref() else {
        return not(Reason::ServiceNotFound, format!("there is no HostedService {target}"));
    };
    if sub.spec.mode == SubscriptionMode::Instance {
        let published = service.spec.catalogue.as_ref().is_some_and(|c| c.publish);
        if !published {
            return not(
                Reason::NotPublished,
                format!("spec.mode instance needs a service published in the catalogue; {target} is not"),
            );
        }
        return Verdict::Active;
    }
    let Some(provider) = parties.provider.as_ref() else {
        return not(Reason::ServiceNotAdmitted, format!("{target} does not run in a tenancy"));
    };
    let consumer_name = consumer.name_any();
    if provider.name_any() == consumer_name {
        return not(
            Reason::SameTenancy,
            format!(
                "{target} belongs to this subscription's own tenancy {consumer_name}, which reaches it without a subscription"
            ),
        );
    }
    // Whether it is listed comes first: a tenancy it is not shared with learns nothing more of it.
    let listed = service.spec.sharing.as_ref().is_some_and(|s| s.consumers.contains(&consumer_name));
    if !listed {
        return not(
            Reason::NotListed,
            format!(
                "{target} does not list tenancy {consumer_name} in spec.sharing.consumers; ask its provider to add it"
            ),
        );
    }
    if service.spec.classification > provider.spec.classification {
        return not(Reason::ServiceNotAdmitted, format!("{target} is not admitted in its tenancy"));
    }
    if consumer.spec.classification < service.spec.classification {
        return not(
            Reason::ClassificationTooLow,
            format!(
                "{target} handles {} data; tenancy {consumer_name} is cleared for {} only",
                service.spec.classification, consumer.spec.classification
            ),
        );
    }
    if parties.provider_suspended {
        return not(
            Reason::ProviderSuspended,
            format!("the provider's tenancy {} is suspended", provider.name_any()),
        );
    }
    Verdict::Active
}

/// The phase a verdict gives, knowing the phase before and whether the subscription was ever
/// Active: one the provider stops serving after it was in use (the consumer dropped from the list,
/// the service deleted or no longer running in a tenancy), even while paused, is Ended, for good; a
/// suspended provider only pauses it.
pub fn phase(verdict: &Verdict, before: Option<SubscriptionPhase>, ever_active: bool) -> SubscriptionPhase {
    match verdict {
        _ if before == Some(SubscriptionPhase::Ended) => SubscriptionPhase::Ended,
        Verdict::Active => SubscriptionPhase::Active,
        Verdict::Not(Reason::NotListed | Reason::ServiceNotFound | Reason::ServiceNotAdmitted, _)
            if ever_active =>
        {
            SubscriptionPhase::Ended
        }
        Verdict::Not(r, _) if r.waits() => SubscriptionPhase::Pending,
        Verdict::Not(..) => SubscriptionPhase::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosted::fixtures::hosted;
    use crate::subscription::fixtures::subscription;
    use crate::tenancy::fixtures::TenancyBuilder;
    use commons_crds::hosted_service::{Catalogue, CostSplit, Sharing};

    fn shared_with(consumers: &[&str]) -> HostedService {
        let mut hs = hosted("payroll", "northshire-hr").port("http", 80, None).build();
        hs.spec.sharing = Some(Sharing {
            consumers: consumers.iter().map(|c| (*c).to_owned()).collect(),
            cost_split: CostSplit::Equal,
            weights: Default::default(),
        });
        hs
    }

    fn tenancy(name: &str, sensitive: bool) -> Arc<Tenancy> {
        let mut t = TenancyBuilder::new(name).build();
        if sensitive {
            t.spec.classification = commons_crds::Classification::OfficialSensitive;
        }
        Arc::new(t)
    }

    #[test]
    fn shared_use_by_table() {
        let sub = subscription("use-payroll", "southshire-apps", "northshire-hr", "payroll").build();
        let listed = Arc::new(shared_with(&["southshire"]));
        let unlisted = Arc::new(shared_with(&["eastshire"]));
        let mut sensitive = shared_with(&["southshire"]);
        sensitive.spec.classification = commons_crds::Classification::OfficialSensitive;
        let sensitive = Arc::new(sensitive);
        let (north, south) = (tenancy("northshire", true), tenancy("southshire", false));
        let p = |consumer: Option<&Arc<Tenancy>>,
                 service: Option<&Arc<HostedService>>,
                 provider: Option<&Arc<Tenancy>>,
                 suspended| Parties {
            consumer: consumer.cloned(),
            service: service.cloned(),
            provider: provider.cloned(),
            provider_suspended: suspended,
        };
        let cases = [
            ("active", p(Some(&south), Some(&listed), Some(&north), false), None),
            ("not listed", p(Some(&south), Some(&unlisted), Some(&north), false), Some(Reason::NotListed)),
            (
                "cleared too low",
                p(Some(&south), Some(&sensitive), Some(&north), false),
                Some(Reason::ClassificationTooLow),
            ),
            ("no service", p(Some(&south), None, Some(&north), false), Some(Reason::ServiceNotFound)),
            (
                "provider suspended",
                p(Some(&south), Some(&listed), Some(&north), true),
                Some(Reason::ProviderSuspended),
            ),
            (
                "consumer outside tenancies",
                p(None, Some(&listed), Some(&north), false),
                Some(Reason::ConsumerNotInTenancy),
            ),
            (
                "provider outside tenancies",
                p(Some(&south), Some(&listed), None, false),
                Some(Reason::ServiceNotAdmitted),
            ),
            ("own tenancy", p(Some(&north), Some(&listed), Some(&north), false), Some(Reason::SameTenancy)),
        ];
        for (name, parties, want) in cases {
            let got = match decide(&sub, &parties) {
                Verdict::Active => None,
                Verdict::Not(r, m) => {
                    assert!(!m.is_empty(), "{name}");
                    Some(r)
                }
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn an_instance_needs_a_published_service_only() {
        let sub =
            subscription("own-payroll", "southshire-apps", "northshire-hr", "payroll").instance().build();
        let mut published = shared_with(&[]);
        published.spec.catalogue = Some(Catalogue {
            publish: true,
            title: Some("Payroll".into()),
            description: Some("Pay".into()),
            category: None,
        });
        let parties = |hs: HostedService| Parties {
            consumer: Some(tenancy("southshire", false)),
            service: Some(Arc::new(hs)),
            provider: Some(tenancy("northshire", true)),
            provider_suspended: true,
        };
        assert_eq!(decide(&sub, &parties(published)), Verdict::Active);
        assert!(matches!(decide(&sub, &parties(shared_with(&[]))), Verdict::Not(Reason::NotPublished, _)));
    }

    #[test]
    fn phases_by_table() {
        use SubscriptionPhase::*;
        let not = |r| Verdict::Not(r, String::new());
        // (verdict, phase before, ever active) → phase
        let cases = [
            (Verdict::Active, None, false, Active),
            (not(Reason::NotListed), None, false, Pending),
            (not(Reason::NotListed), Some(Active), true, Ended),
            (not(Reason::ServiceNotFound), Some(Active), true, Ended),
            (not(Reason::ServiceNotAdmitted), Some(Active), true, Ended),
            (not(Reason::ProviderSuspended), Some(Active), true, Pending),
            (not(Reason::NotListed), Some(Pending), true, Ended),
            (not(Reason::ServiceNotFound), Some(Pending), true, Ended),
            (not(Reason::ServiceNotFound), Some(Pending), false, Pending),
            (Verdict::Active, Some(Pending), true, Active),
            (Verdict::Active, Some(Ended), true, Ended),
            (not(Reason::ClassificationTooLow), None, false, Refused),
            (not(Reason::NotPublished), Some(Pending), false, Refused),
        ];
        for (verdict, before, ever, want) in cases {
            assert_eq!(
                phase(&verdict, before, ever),
                want,
                "{verdict:?} after {before:?} (ever active: {ever})"
            );
        }
    }
}

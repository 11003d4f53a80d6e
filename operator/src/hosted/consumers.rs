//! Who uses a shared service (pure): the namespaces its path opens to, and the consumers its
//! status lists, from the subscriptions that name it and the one consent decision.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use commons_crds::hosted_service::{ConsumerStatus, HostedService};
use commons_crds::subscription::{Subscription, SubscriptionMode, SubscriptionPhase};
use kube::ResourceExt;

use crate::subscription::consent::Verdict;

/// How many tenancies that asked without being listed a provider's status shows.
pub const MAX_UNLISTED: usize = 20;

/// The consumers of one service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumers {
    /// Namespaces with an Active subscription: the path into the service's pods opens to these.
    pub namespaces: Vec<String>,
    /// Each listed tenancy, and each tenancy that asked, with whether it uses the service.
    pub statuses: Vec<ConsumerStatus>,
}

/// Whether `sub` asks for shared use of `hs` and has not ended.
pub fn names(sub: &Subscription, hs: &HostedService) -> bool {
    sub.spec.mode == SubscriptionMode::Shared
        && sub.spec.service.name == hs.name_any()
        && Some(&sub.spec.service.namespace) == hs.namespace().as_ref()
        && sub.metadata.deletion_timestamp.is_none()
        && sub.status.as_ref().and_then(|s| s.phase) != Some(SubscriptionPhase::Ended)
}

/// The consumers of `hs` among `subs`; `decide` gives each subscription's consumer tenancy and
/// the consent verdict.
pub fn of(
    hs: &HostedService,
    subs: &[Arc<Subscription>],
    decide: impl Fn(&Subscription) -> (Option<String>, Verdict),
) -> Consumers {
    let mut namespaces = BTreeSet::new();
    // tenancy → (active, the reason and message of one subscription that is not)
    let mut asked: BTreeMap<String, (bool, Option<(String, String)>)> = BTreeMap::new();
    for sub in subs.iter().filter(|s| names(s, hs)) {
        let (tenancy, verdict) = decide(sub);
        let Some(tenancy) = tenancy else { continue };
        let entry = asked.entry(tenancy).or_insert((false, None));
        match verdict {
            Verdict::Active => {
                namespaces.insert(sub.namespace().unwrap_or_default());
                entry.0 = true;
            }
            Verdict::Not(reason, message) => entry.1 = Some((reason.as_str().to_owned(), message)),
        }
    }
    let listed: Vec<String> = hs.spec.sharing.as_ref().map(|s| s.consumers.clone()).unwrap_or_default();
    let mut statuses: Vec<ConsumerStatus> = listed
        .iter()
        .map(|t| match asked.get(t) {
            Some((true, _)) => {
                ConsumerStatus { tenancy: t.clone(), admitted: true, reason: None, message: None }
            }
            Some((false, Some((reason, message)))) => ConsumerStatus {
                tenancy: t.clone(),
                admitted: false,
                reason: Some(reason.clone()),
                message: Some(message.clone()),
            },
            _ => ConsumerStatus {
                tenancy: t.clone(),
                admitted: false,
                reason: Some("NoSubscription".into()),
                message: Some(format!("tenancy {t} may use the service but has no Subscription to it")),
            },
        })
        .collect();
    // Tenancies that asked without being listed are shown (the provider may want to add them), but
    // at most MAX_UNLISTED of them: anyone may ask, and the status must stay small.
    for (t, (_, why)) in asked.iter().filter(|(t, _)| !listed.contains(t)).take(MAX_UNLISTED) {
        statuses.push(ConsumerStatus {
            tenancy: t.clone(),
            admitted: false,
            reason: Some(why.as_ref().map_or("NotListed".into(), |w| w.0.clone())),
            message: why.as_ref().map(|w| w.1.clone()),
        });
    }
    statuses.sort_by(|a, b| a.tenancy.cmp(&b.tenancy));
    Consumers { namespaces: namespaces.into_iter().collect(), statuses }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosted::fixtures::hosted;
    use crate::subscription::consent::Reason;
    use crate::subscription::fixtures::subscription;
    use commons_crds::hosted_service::{CostSplit, Sharing};

    #[test]
    fn consumers_by_subscription() {
        let mut hs = hosted("payroll", "north-hr").port("http", 80, None).build();
        hs.spec.sharing = Some(Sharing {
            consumers: vec!["south".into(), "west".into(), "east".into()],
            cost_split: CostSplit::Equal,
            weights: Default::default(),
        });
        let mut ended = subscription("old", "east-apps", "north-hr", "payroll").build();
        ended.status = Some(commons_crds::subscription::SubscriptionStatus {
            phase: Some(SubscriptionPhase::Ended),
            ..Default::default()
        });
        let subs = vec![
            Arc::new(subscription("payroll", "south-apps", "north-hr", "payroll").build()),
            Arc::new(subscription("payroll", "south-web", "north-hr", "payroll").build()),
            Arc::new(subscription("payroll", "west-apps", "north-hr", "payroll").build()),
            Arc::new(subscription("payroll", "rogue-apps", "north-hr", "payroll").build()),
            Arc::new(subscription("other", "south-apps", "north-hr", "ledger").build()),
            Arc::new(subscription("copy", "west-apps", "north-hr", "payroll").instance().build()),
            Arc::new(ended),
        ];
        let c = of(&hs, &subs, |s| {
            let ns = s.namespace().unwrap();
            let tenancy = ns.split('-').next().unwrap().to_owned();
            let verdict = match tenancy.as_str() {
                "south" => Verdict::Active,
                "west" => Verdict::Not(Reason::ClassificationTooLow, "too low".into()),
                _ => Verdict::Not(Reason::NotListed, "not listed".into()),
            };
            (Some(tenancy), verdict)
        });
        assert_eq!(c.namespaces, ["south-apps", "south-web"]);
        let summary: Vec<(String, bool, Option<String>)> =
            c.statuses.iter().map(|s| (s.tenancy.clone(), s.admitted, s.reason.clone())).collect();
        assert_eq!(
            summary,
            [
                ("east".into(), false, Some("NoSubscription".into())),
                ("rogue".into(), false, Some("NotListed".into())),
                ("south".into(), true, None),
                ("west".into(), false, Some("ClassificationTooLow".into())),
            ]
        );
    }

    #[test]
    fn tenancies_that_ask_unlisted_are_shown_up_to_a_limit() {
        let hs = hosted("payroll", "north-hr").port("http", 80, None).build();
        let subs: Vec<Arc<Subscription>> = (0..30)
            .map(|i| {
                Arc::new(subscription("payroll", &format!("t{i:02}-apps"), "north-hr", "payroll").build())
            })
            .collect();
        let c = of(&hs, &subs, |s| {
            let tenancy = s.namespace().unwrap().split('-').next().unwrap().to_owned();
            (Some(tenancy), Verdict::Not(Reason::NotListed, "not listed".into()))
        });
        assert_eq!(c.statuses.len(), MAX_UNLISTED);
        assert!(c.namespaces.is_empty());
    }
}

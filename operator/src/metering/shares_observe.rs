//! What the meter sees of shared HostedServices (pure): each consumer's share while its shared
//! Subscription is active, and the provider's own share while it lists its own tenancy among the
//! service's consumers, each weighted as the service's `spec.sharing` splits its cost. The
//! meter's memory of the subscriptions and services it has seen ([`Shares`]) is here too, so a
//! change of a service's split re-observes the subscriptions to it.

use std::collections::HashMap;

use commons_crds::hosted_service::{CostSplit, Sharing};
use commons_crds::subscription::{ServiceReference, SubscriptionMode, SubscriptionPhase};
use commons_crds::{HostedService, Subscription};
use kube::ResourceExt;
use kube::runtime::watcher::Event;

use super::observe::{self, ms};
use super::tracker::{Observation, Span};
use crate::ledger::{Attribution, Held, Kind};

/// How the ledger names a shared service: `<provider namespace>/<service name>`.
pub fn service_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// A tenancy's weight in a service's cost split: 1 for an equal split (or no sharing), its
/// weight for a weighted one (1 when it has none; never negative).
pub fn weight(sharing: Option<&Sharing>, tenancy: &str) -> i64 {
    match sharing {
        Some(s) if s.cost_split == CostSplit::Weighted => {
            s.weights.get(tenancy).map_or(1, |w| i64::from(*w).max(0))
        }
        _ => 1,
    }
}

/// A consumer's share of the service its Subscription names, charged to `consumer` (the tenancy
/// owning the subscription's namespace; its `hosted_service` is set here). `service` is the
/// HostedService named, if it exists.
///
/// Billable from `activeSince` while Active; a subscription no longer Active after it was (Ended,
/// or paused: Pending or Refused with both `activeSince` and `endedAt`) was billable from
/// `activeSince` until `endedAt`. An active subscription whose service is gone, one never active,
/// and an instance subscription (its own pods are charged to the consumer already) are not.
pub fn share(sub: &Subscription, consumer: Attribution, service: Option<&HostedService>) -> Observation {
    let target = &sub.spec.service;
    let sharing = service.and_then(|s| s.spec.sharing.as_ref());
    let held = Held { share_weight: weight(sharing, &consumer.tenancy), ..Held::default() };
    let span = match sub.spec.mode {
        SubscriptionMode::Instance => Span::Never,
        SubscriptionMode::Shared => match active(sub) {
            Span::Since(_) if service.is_none() => Span::Never,
            span => span,
        },
    };
    let attribution =
        Attribution { hosted_service: service_key(&target.namespace, &target.name), ..consumer };
    observe::observation(Kind::Share, sub, attribution, held, span)
}

/// A share's span as the meter may record it: never before `watermark_ms`, the instant the
/// meter's record was last complete before this run (a share active since before then that the
/// ledger does not hold began before shares were metered, or while nobody watched: it is billed
/// from `now_ms`, as the provider's own share and a load balancer are; an ended one is clipped
/// there). A share billed from its own `activeSince` long before would re-split months already
/// closed and invoiced.
pub fn from_watermark(span: Span, watermark_ms: i64, now_ms: i64) -> Span {
    match span {
        Span::Since(start) if start < watermark_ms => Span::Since(now_ms),
        Span::Ended { start_ms, end_ms } if start_ms < watermark_ms => {
            if end_ms > watermark_ms {
                Span::Ended { start_ms: watermark_ms, end_ms }
            } else {
                Span::Never
            }
        }
        span => span,
    }
}

/// When a subscription was in use, by its status.
fn active(sub: &Subscription) -> Span {
    let Some(status) = sub.status.as_ref() else { return Span::Never };
    let since = status.active_since.as_ref().map(|t| ms(t.0));
    let ended = status.ended_at.as_ref().map(|t| ms(t.0));
    match (status.phase, since, ended) {
        (Some(SubscriptionPhase::Active), Some(start_ms), _) => Span::Since(start_ms),
        (
            Some(SubscriptionPhase::Ended | SubscriptionPhase::Pending | SubscriptionPhase::Refused),
            Some(start_ms),
            Some(end_ms),
        ) => Span::Ended { start_ms, end_ms },
        _ => Span::Never,
    }
}

/// The provider's own share of its HostedService, charged to `provider` (the tenancy owning the
/// service's namespace; its `hosted_service` is set here): billable while `spec.sharing` lists
/// that tenancy among the consumers, from the service's creation when it was created after
/// `watermark_ms`, otherwise from `now_ms` (as a Service's load balancer).
pub fn provider_share(
    hs: &HostedService,
    provider: Attribution,
    watermark_ms: i64,
    now_ms: i64,
) -> Observation {
    let sharing = hs.spec.sharing.as_ref();
    let listed = sharing.is_some_and(|s| s.consumers.contains(&provider.tenancy));
    let held = Held { share_weight: weight(sharing, &provider.tenancy), ..Held::default() };
    let span = if listed { observe::from_creation(hs, watermark_ms, now_ms) } else { Span::Never };
    let key = service_key(&hs.namespace().unwrap_or_default(), &hs.name_any());
    let attribution = Attribution { hosted_service: key, ..provider };
    observe::observation(Kind::ProviderShare, hs, attribution, held, span)
}

/// A HostedService's place: namespace and name.
type Place = (String, String);

fn place_of(r: &ServiceReference) -> Place {
    (r.namespace.clone(), r.name.clone())
}

/// What the meter remembers of sharing: the shared subscriptions its Subscription watch has shown
/// (by uid) and the HostedServices its own HostedService watch has shown (by place), each as of
/// that watch's last event, so that every decision follows the meter's own view in order.
#[derive(Debug, Default)]
pub struct Shares {
    subscriptions: HashMap<String, Subscription>,
    services: HashMap<Place, HostedService>,
}

impl Shares {
    /// Follows an event of the Subscription watch (a new list starts afresh).
    pub fn follow_subscription(&mut self, event: &Event<Subscription>) {
        match event {
            Event::Init => self.subscriptions.clear(),
            Event::InitApply(s) | Event::Apply(s) if s.spec.mode == SubscriptionMode::Shared => {
                self.subscriptions.insert(s.uid().unwrap_or_default(), s.clone());
            }
            Event::Delete(s) => {
                self.subscriptions.remove(&s.uid().unwrap_or_default());
            }
            Event::InitApply(_) | Event::Apply(_) | Event::InitDone => {}
        }
    }

    /// Follows an event of the HostedService watch (a new list starts afresh).
    pub fn follow_service(&mut self, event: &Event<HostedService>) {
        match event {
            Event::Init => self.services.clear(),
            Event::InitApply(hs) | Event::Apply(hs) => {
                self.services.insert((hs.namespace().unwrap_or_default(), hs.name_any()), hs.clone());
            }
            Event::Delete(hs) => {
                self.services.remove(&(hs.namespace().unwrap_or_default(), hs.name_any()));
            }
            Event::InitDone => {}
        }
    }

    /// The HostedService a subscription names, if the watch has shown it.
    pub fn service(&self, of: &ServiceReference) -> Option<&HostedService> {
        self.services.get(&place_of(of))
    }

    /// The shared subscriptions to the service at `to` (namespace and name), or to any service.
    pub fn subscribers<'a>(&'a self, to: Option<&'a Place>) -> impl Iterator<Item = &'a Subscription> + 'a {
        self.subscriptions.values().filter(move |s| to.is_none_or(|p| place_of(&s.spec.service) == *p))
    }
}

/// The place of the HostedService an event is about, for the subscriptions to re-observe:
/// `Some(None)` for all of them (a list just completed), `None` for none.
pub fn touched(event: &Event<HostedService>) -> Option<Option<Place>> {
    match event {
        Event::Apply(hs) | Event::Delete(hs) => {
            Some(Some((hs.namespace().unwrap_or_default(), hs.name_any())))
        }
        Event::InitDone => Some(None),
        Event::Init | Event::InitApply(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::hosted::fixtures::hosted;
    use crate::ledger::Write;
    use crate::metering::tracker::Tracker;
    use crate::subscription::fixtures::subscription;
    use commons_crds::subscription::SubscriptionStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn who(tenancy: &str) -> Attribution {
        Attribution {
            tenancy: tenancy.into(),
            organisation: format!("{tenancy}-org"),
            ..Attribution::default()
        }
    }

    fn at(ms: i64) -> Time {
        Time(jiff::Timestamp::from_millisecond(ms).unwrap())
    }

    /// A subscription in the consumer's namespace `c-app` to `p-app/payroll`.
    fn sub(phase: Option<SubscriptionPhase>, since: Option<i64>, ended: Option<i64>) -> Subscription {
        let mut s = subscription("payroll", "c-app", "p-app", "payroll").build();
        s.status = Some(SubscriptionStatus {
            phase,
            active_since: since.map(at),
            ended_at: ended.map(at),
            ..SubscriptionStatus::default()
        });
        s
    }

    /// `p-app/payroll`, shared with `consumers`, weighted when `weights` are given.
    fn service(consumers: &[&str], weights: &[(&str, i32)]) -> HostedService {
        let mut hs = hosted("payroll", "p-app").build();
        hs.metadata.creation_timestamp = Some(at(10_000));
        hs.spec.sharing = Some(Sharing {
            consumers: consumers.iter().map(|c| (*c).to_owned()).collect(),
            cost_split: if weights.is_empty() { CostSplit::Equal } else { CostSplit::Weighted },
            weights: weights.iter().map(|(t, w)| ((*t).to_owned(), *w)).collect::<BTreeMap<_, _>>(),
        });
        hs
    }

    #[test]
    fn a_share_is_billed_while_its_subscription_is_in_use() {
        use SubscriptionPhase::*;
        let hs = service(&["c"], &[]);
        let cases = [
            ("active", sub(Some(Active), Some(1_000), None), Span::Since(1_000)),
            (
                "ended",
                sub(Some(Ended), Some(1_000), Some(9_000)),
                Span::Ended { start_ms: 1_000, end_ms: 9_000 },
            ),
            (
                "paused",
                sub(Some(Pending), Some(1_000), Some(9_000)),
                Span::Ended { start_ms: 1_000, end_ms: 9_000 },
            ),
            ("pending", sub(Some(Pending), None, None), Span::Never),
            ("refused", sub(Some(Refused), None, None), Span::Never),
            ("ended, never active", sub(Some(Ended), None, Some(9_000)), Span::Never),
            ("no status", sub(None, None, None), Span::Never),
        ];
        for (name, s, want) in cases {
            let o = share(&s, who("c"), Some(&hs));
            assert_eq!(o.span, want, "{name}");
            assert_eq!(
                (o.kind, o.uid.as_str(), o.namespace.as_str()),
                (Kind::Share, "uid-c-app-payroll", "c-app")
            );
            assert_eq!(
                (o.attribution.tenancy.as_str(), o.attribution.hosted_service.as_str()),
                ("c", "p-app/payroll")
            );
            assert_eq!(o.held, Held { share_weight: 1, ..Held::default() }, "{name}");
        }
    }

    #[test]
    fn an_instance_or_a_share_of_a_service_that_is_gone_is_not_billed() {
        let active = sub(Some(SubscriptionPhase::Active), Some(1_000), None);
        let mut instance = active.clone();
        instance.spec.mode = SubscriptionMode::Instance;
        assert_eq!(share(&instance, who("c"), Some(&service(&["c"], &[]))).span, Span::Never);
        assert_eq!(share(&active, who("c"), None).span, Span::Never);
        let ended = sub(Some(SubscriptionPhase::Ended), Some(1_000), Some(9_000));
        assert_eq!(
            share(&ended, who("c"), None).span,
            Span::Ended { start_ms: 1_000, end_ms: 9_000 },
            "its end is its own"
        );
    }

    #[test]
    fn weights_follow_the_cost_split() {
        let cases = [
            ("equal", service(&["c", "d"], &[]), 1),
            ("weighted", service(&["c", "d"], &[("c", 3), ("d", 1)]), 3),
            ("weighted, none for it", service(&["c", "d"], &[("d", 5)]), 1),
            ("no sharing", hosted("payroll", "p-app").build(), 1),
        ];
        let active = sub(Some(SubscriptionPhase::Active), Some(1_000), None);
        for (name, hs, want) in cases {
            assert_eq!(share(&active, who("c"), Some(&hs)).held.share_weight, want, "{name}");
        }
    }

    #[test]
    fn the_provider_has_a_share_only_while_it_lists_itself() {
        let cases = [
            ("listed, created while watched", service(&["c", "p"], &[]), 5_000, Span::Since(10_000), 1),
            ("listed, created before", service(&["c", "p"], &[]), 20_000, Span::Since(30_000), 1),
            ("listed, weighted", service(&["c", "p"], &[("c", 1), ("p", 4)]), 5_000, Span::Since(10_000), 4),
            ("not listed", service(&["c"], &[]), 5_000, Span::Never, 1),
            ("no sharing", hosted("payroll", "p-app").build(), 5_000, Span::Never, 1),
        ];
        for (name, hs, watermark, span, weight) in cases {
            let o = provider_share(&hs, who("p"), watermark, 30_000);
            assert_eq!((o.span, o.held.share_weight), (span, weight), "{name}");
            assert_eq!(
                (o.kind, o.uid.as_str(), o.namespace.as_str()),
                (Kind::ProviderShare, "uid-p-app-payroll", "p-app")
            );
            assert_eq!(
                (o.attribution.tenancy.as_str(), o.attribution.hosted_service.as_str()),
                ("p", "p-app/payroll")
            );
        }
    }

    #[test]
    fn a_weight_change_closes_the_share_and_opens_the_next_at_that_instant() {
        let mut t = Tracker::new(0, vec![]);
        let active = sub(Some(SubscriptionPhase::Active), Some(1_000), None);
        let w = t.observe(share(&active, who("c"), Some(&service(&["c", "d"], &[]))), 2_000);
        assert!(
            matches!(&w[..], [Write::Open(i)] if i.start_ms == 1_000 && i.held.share_weight == 1),
            "{w:?}"
        );
        let weighted = service(&["c", "d"], &[("c", 3), ("d", 1)]);
        let w = t.observe(share(&active, who("c"), Some(&weighted)), 50_000);
        match &w[..] {
            [Write::Close(c), Write::Open(i)] => {
                assert_eq!((c.key.as_str(), c.end_ms), ("share/uid-c-app-payroll/1000", 50_000));
                assert_eq!(
                    (i.start_ms, i.held.share_weight, i.attribution.hosted_service.as_str()),
                    (50_000, 3, "p-app/payroll")
                );
            }
            other => panic!("expected a close and an open, got {other:?}"),
        }
        assert!(t.observe(share(&active, who("c"), Some(&weighted)), 60_000).is_empty(), "nothing changed");
        let ended = sub(Some(SubscriptionPhase::Ended), Some(1_000), Some(70_000));
        let w = t.observe(share(&ended, who("c"), Some(&weighted)), 71_000);
        assert!(matches!(&w[..], [Write::Close(c)] if c.end_ms == 70_000), "closed at its end: {w:?}");
    }

    #[test]
    fn shares_remember_the_subscriptions_to_re_observe_when_a_service_changes() {
        let mut shares = Shares::default();
        let active = sub(Some(SubscriptionPhase::Active), Some(1_000), None);
        let mut other = subscription("other", "c-app", "p-app", "ledger").build();
        other.status = active.status.clone();
        let instance = subscription("own", "c-app", "p-app", "payroll").instance().build();
        for s in [&active, &other, &instance] {
            shares.follow_subscription(&Event::Apply(s.clone()));
        }
        let hs = service(&["c"], &[]);
        shares.follow_service(&Event::Apply(hs.clone()));
        assert!(shares.service(&active.spec.service).is_some());
        let place = touched(&Event::Apply(hs.clone())).flatten();
        let names: Vec<String> = shares.subscribers(place.as_ref()).map(|s| s.name_any()).collect();
        assert_eq!(names, vec!["payroll".to_owned()], "only shared subscriptions to that service");
        assert_eq!(shares.subscribers(None).count(), 2);
        shares.follow_service(&Event::Delete(hs.clone()));
        assert!(shares.service(&active.spec.service).is_none());
        shares.follow_subscription(&Event::Delete(active.clone()));
        assert_eq!(shares.subscribers(None).count(), 1);
        shares.follow_subscription(&Event::Init);
        assert_eq!(shares.subscribers(None).count(), 0, "a new list starts afresh");
        assert_eq!(touched(&Event::InitDone), Some(None));
        assert_eq!(touched(&Event::InitApply(hs)), None);
    }

    #[test]
    fn a_share_older_than_the_record_is_billed_from_when_the_meter_first_sees_it() {
        let (watermark, now) = (100_000, 150_000);
        let cases = [
            ("active since after the watermark", Span::Since(120_000), Span::Since(120_000)),
            ("active since before: from now", Span::Since(10_000), Span::Since(now)),
            ("ended before the watermark", Span::Ended { start_ms: 10_000, end_ms: 90_000 }, Span::Never),
            (
                "ended after it: clipped",
                Span::Ended { start_ms: 10_000, end_ms: 130_000 },
                Span::Ended { start_ms: watermark, end_ms: 130_000 },
            ),
            (
                "wholly after it",
                Span::Ended { start_ms: 110_000, end_ms: 130_000 },
                Span::Ended { start_ms: 110_000, end_ms: 130_000 },
            ),
            ("never", Span::Never, Span::Never),
        ];
        for (name, span, want) in cases {
            assert_eq!(from_watermark(span, watermark, now), want, "{name}");
        }
    }
}

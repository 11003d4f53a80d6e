//! What the quota webhook and the quota planner tell each other (both run in the `commons`
//! process).
//!
//! - **Demand:** a namespace refused because its share was used up while the tenancy still had
//!   headroom elsewhere.
//! - **Pinned shares:** the planner lowers a share while holding the tenancy's admission lock and
//!   says so first, so the webhook never admits against a share its watch still shows higher; and
//!   after it raises a share the webhook keeps to the old one for [`RAISE_SETTLES`], until the
//!   apiserver's own quota admission has surely seen the raise too. Either way the ResourceQuota
//!   behind the webhook would otherwise refuse what the webhook admitted, and that quota would stay
//!   held for a minute.
//!
//! A namespace with no usage gives the quota planner no sign of wanting more; a refused request
//! is that sign. The webhook records it here and asks for the tenancy to be reconciled, and the
//! planner then treats the namespace as starved for that resource, so free headroom moves to it
//! within seconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use commons_crds::tenancy::Tenancy;
use futures::channel::mpsc;
use kube::runtime::reflector::ObjectRef;

use crate::quantity::Milli;
use crate::tenancy::quota::Amounts;

/// How long a refusal counts as demand, unless a new share meets it first. Refused clients retry
/// within seconds; a namespace that stopped asking must not keep headroom from one that asks.
pub const FRESH: Duration = Duration::from_secs(15);

/// How long demand outlives the share that meets it (unless refused again meanwhile): long
/// enough for the refused client to retry and use it.
pub const GRANTED_FOR: Duration = Duration::from_secs(5);

/// Recent refusals by namespace and resource, and the trigger that reconciles their tenancy.
pub struct Demand {
    seen: Mutex<HashMap<(String, String), (Milli, Instant)>>,
    trigger: mpsc::UnboundedSender<ObjectRef<Tenancy>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Share values the webhook keeps to, by namespace and resource, until the instant given.
    pinned: Mutex<HashMap<(String, String), (Milli, Instant)>>,
    counter: std::sync::OnceLock<Counter>,
}

/// What each namespace of a tenancy uses as the webhook counts it (watches plus admissions in
/// flight).
pub type Counter = Box<dyn Fn(&str) -> BTreeMap<String, Amounts> + Send + Sync>;

impl std::fmt::Debug for Demand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demand").field("webhook", &self.counter.get().is_some()).finish_non_exhaustive()
    }
}

/// Share values the webhook keeps to for one namespace.
#[derive(Debug, Default, PartialEq)]
pub struct Pins {
    /// By resource.
    pub hard: Amounts,
    /// When the last pin of a stored raise ends, if one is settling.
    pub raise_settles: Option<Instant>,
}

/// How long a lowered share is remembered (the watch of ResourceQuotas shows it long before).
pub const LOWERED_FOR: Duration = Duration::from_secs(30);

/// How long the webhook keeps to a share's old value after it was raised. The apiserver's quota
/// admission reads ResourceQuotas from its own watch, which may show the raise a little after
/// Commons' watch does; within that gap it would refuse what the webhook admitted.
pub const RAISE_SETTLES: Duration = Duration::from_secs(1);

impl Demand {
    /// A new register and the stream of tenancies to reconcile.
    pub fn new() -> (Demand, mpsc::UnboundedReceiver<ObjectRef<Tenancy>>) {
        let (trigger, rx) = mpsc::unbounded();
        let demand = Demand {
            seen: Mutex::default(),
            trigger,
            locks: Mutex::default(),
            pinned: Mutex::default(),
            counter: std::sync::OnceLock::new(),
        };
        (demand, rx)
    }

    /// Records that `namespace` of `tenancy` was refused `amount` more of `resource` than it uses
    /// by its share (the largest such refusal within [`FRESH`] counts).
    pub fn record(&self, tenancy: &str, namespace: &str, resource: &str, amount: Milli) {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        seen.retain(|_, (_, at)| now.duration_since(*at) < FRESH);
        let entry = seen.entry((namespace.to_owned(), resource.to_owned())).or_insert((Milli::ZERO, now));
        *entry = (entry.0.max(amount), now);
        drop(seen);
        // The controller has stopped when the receiver is gone; nothing to do then.
        let _ = self.trigger.unbounded_send(ObjectRef::new(tenancy));
    }

    /// Lets the planner ask the webhook what each namespace uses (set once, by the webhook).
    pub fn count_with(&self, counter: Counter) {
        let _ = self.counter.set(counter);
    }

    /// What each namespace of `tenancy` uses as the webhook counts it, when the webhook runs
    /// (call with the tenancy lock held, so no decision changes it meanwhile).
    pub fn webhook_usage(&self, tenancy: &str) -> BTreeMap<String, Amounts> {
        self.counter.get().map(|count| count(tenancy)).unwrap_or_default()
    }

    /// Notes that `namespace`'s new share meets its demand for `resource`: the demand ends within
    /// [`GRANTED_FOR`] unless the namespace is refused again, so the grant is not taken back
    /// before the namespace could use it, and a namespace that stopped asking does not keep
    /// headroom from one that asks.
    pub fn satisfied(&self, namespace: &str, resource: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (namespace.to_owned(), resource.to_owned());
        match Instant::now().checked_sub(FRESH.saturating_sub(GRANTED_FOR)) {
            Some(ends) => {
                if let Some((_, at)) = seen.get_mut(&key) {
                    *at = (*at).min(ends);
                }
            }
            None => {
                seen.remove(&key);
            }
        }
    }

    /// The lock that orders the webhook's decisions for `tenancy` and the planner's lowering of
    /// its shares.
    pub fn tenancy_lock(&self, tenancy: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(tenancy.to_owned()).or_default().clone()
    }

    /// Forgets the lock of a tenancy that is gone, unless someone holds or waits for it.
    pub fn forget(&self, tenancy: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks.get(tenancy).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(tenancy);
        }
    }

    /// Records that `namespace`'s shares are about to become `hard` (call with the tenancy lock
    /// held, before the write).
    pub fn lowering(&self, namespace: &str, hard: &Amounts) {
        self.pin(namespace, hard, LOWERED_FOR);
    }

    /// Records that `namespace`'s shares are about to be raised from `before`: the webhook keeps
    /// to `before` until [`Demand::raised`] (call before the write).
    pub fn raising(&self, namespace: &str, before: &Amounts) {
        self.pin(namespace, before, LOWERED_FOR);
    }

    /// Records that the raise of `namespace`'s shares is stored: the webhook keeps to the old
    /// shares for [`RAISE_SETTLES`] more.
    pub fn raised(&self, namespace: &str) {
        let mut pinned = self.pinned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = Instant::now() + RAISE_SETTLES;
        for ((ns, _), (_, end)) in pinned.iter_mut() {
            if ns == namespace {
                *end = (*end).min(until);
            }
        }
    }

    fn pin(&self, namespace: &str, hard: &Amounts, ttl: Duration) {
        let mut pinned = self.pinned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        pinned.retain(|_, (_, until)| *until > now);
        for (resource, amount) in hard {
            pinned.insert((namespace.to_owned(), resource.clone()), (*amount, now + ttl));
        }
    }

    /// The most the webhook may count as `namespace`'s share now, by resource, where that is less
    /// than its watch may show: shares being lowered, and shares raised moments ago.
    pub fn pinned(&self, namespace: &str) -> Pins {
        let pinned = self.pinned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let mut pins = Pins::default();
        for ((ns, resource), (amount, until)) in pinned.iter() {
            if ns == namespace && *until > now {
                pins.hard.insert(resource.clone(), *amount);
                if until.duration_since(now) <= RAISE_SETTLES {
                    pins.raise_settles = Some(pins.raise_settles.map_or(*until, |t: Instant| t.max(*until)));
                }
            }
        }
        pins
    }

    /// What `namespace` was refused beyond its usage within [`FRESH`], by resource.
    pub fn wanted(&self, namespace: &str) -> Amounts {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.iter()
            .filter(|((ns, _), (_, at))| ns == namespace && at.elapsed() < FRESH)
            .map(|((_, r), (amount, _))| (r.clone(), *amount))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_refusal_is_remembered_and_triggers_its_tenancy() {
        let (demand, mut rx) = Demand::new();
        demand.record("t", "t-b", "pods", Milli::units(2));
        demand.record("t", "t-b", "pods", Milli::units(1));
        demand.record("t", "t-b", "services.loadbalancers", Milli::units(1));
        assert_eq!(
            demand.wanted("t-b"),
            [("pods".to_owned(), Milli::units(2)), ("services.loadbalancers".to_owned(), Milli::units(1))]
                .into()
        );
        assert!(demand.wanted("t-a").is_empty());
        assert_eq!(rx.next().await, Some(ObjectRef::new("t")));
        // Met: the demand stays while the namespace may still use its grant, then ends.
        demand.satisfied("t-b", "pods");
        assert_eq!(demand.wanted("t-b")["pods"], Milli::units(2));
        let ends_at = |demand: &Demand| {
            let seen = demand.seen.lock().unwrap();
            seen[&("t-b".to_owned(), "pods".to_owned())].1 + FRESH
        };
        let ends = ends_at(&demand);
        assert!(ends <= Instant::now() + GRANTED_FOR && ends > Instant::now() + GRANTED_FOR / 2);
        demand.satisfied("t-b", "pods");
        assert!(ends_at(&demand) <= ends, "meeting it again does not extend it");
        demand.record("t", "t-b", "pods", Milli::units(1));
        assert!(ends_at(&demand) > Instant::now() + GRANTED_FOR, "a new refusal renews it");
    }

    #[test]
    fn shares_are_pinned_while_lowered_and_briefly_after_a_raise_and_locks_are_per_tenancy() {
        let (demand, _rx) = Demand::new();
        let three: Amounts = [("pods".to_owned(), Milli::units(3))].into();
        demand.lowering("t-a", &three);
        assert_eq!(demand.pinned("t-a").hard, three);
        assert!(demand.pinned("t-b").hard.is_empty());
        // A raise from 3 keeps the webhook at 3 until it is stored, and a moment longer.
        demand.raising("t-b", &three);
        assert_eq!(demand.pinned("t-b").hard, three);
        assert_eq!(demand.pinned("t-b").raise_settles, None, "not stored yet: no end in sight");
        demand.raised("t-b");
        let pins = demand.pinned("t-b");
        assert_eq!(pins.hard, three);
        assert!(pins.raise_settles.is_some_and(|t| t <= Instant::now() + RAISE_SETTLES));
        assert_eq!(demand.pinned("t-a").raise_settles, None);
        std::thread::sleep(RAISE_SETTLES + Duration::from_millis(50));
        assert!(demand.pinned("t-b").hard.is_empty());
        assert_eq!(demand.pinned("t-a").hard, three, "a lowered share stays pinned");
        assert!(Arc::ptr_eq(&demand.tenancy_lock("t"), &demand.tenancy_lock("t")));
        assert!(!Arc::ptr_eq(&demand.tenancy_lock("t"), &demand.tenancy_lock("u")));
        // A gone tenancy's lock is forgotten, but never while someone holds it.
        let held = demand.tenancy_lock("t");
        demand.forget("t");
        assert!(Arc::ptr_eq(&held, &demand.tenancy_lock("t")));
        drop(held);
        demand.forget("t");
        assert_eq!(demand.locks.lock().unwrap().len(), 1, "only u's lock is left");
    }
}

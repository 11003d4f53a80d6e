//! The tenancy-wide quota decision, and the reservations that make it strict.
//!
//! The apiserver calls the webhook before it stores an object, so an object admitted a moment ago
//! is not yet in any list or watch. Each admission therefore leaves a *reservation* (the object's
//! uid and what it counts) and every later decision counts, per object, the larger of what the
//! watches show and what was reserved. A reservation ends when the watches show the object
//! counting at least as much, or — for an object whose creation failed after the webhook (another
//! admission check refused it) — when a fresh read after [`SETTLE`] shows it absent. Decisions
//! for one tenancy are made one at a time, so two concurrent requests can never both take the
//! last unit.
//!
//! Pure: the caller passes in what the watches show and the time.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::quantity::{Milli, format_for};
use crate::tenancy::quota::Amounts;

/// How long a reservation is held before a fresh read may end it: longer than the apiserver's
/// default request timeout (60 s), after which a request that passed the webhook can no longer be
/// stored.
pub const SETTLE: Duration = Duration::from_secs(65);

/// The kinds of object the quota check counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A Pod.
    Pod,
    /// A PersistentVolumeClaim.
    PersistentVolumeClaim,
    /// A Service.
    Service,
}

impl Kind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::Service => "Service",
        }
    }
}

/// One object as the watches show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Charged {
    /// Its namespace.
    pub namespace: String,
    /// What it counts (empty when it no longer counts, for example a finished pod).
    pub usage: Amounts,
}

/// What the watches show of a tenancy, by object uid.
pub type Observed = BTreeMap<String, Charged>;

/// An admission not yet seen in the watches.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservation {
    /// The object's uid (set by the apiserver before admission).
    pub uid: String,
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// What it counts once stored.
    pub usage: Amounts,
    /// When it was admitted, as seconds on the caller's monotonic clock.
    pub at: f64,
}

/// A request to admit: an object that will count `usage` (and counted `previous` before, for an
/// update).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The object's uid.
    pub uid: String,
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// What it will count.
    pub usage: Amounts,
    /// What it counted before (empty for a create).
    pub previous: Amounts,
}

impl Request {
    /// What admitting the request adds, resource by resource (only increases).
    pub fn increase(&self) -> Amounts {
        self.usage
            .iter()
            .map(|(k, v)| (k.clone(), v.saturating_sub(self.previous.get(k).copied().unwrap_or_default())))
            .filter(|(_, v)| *v > Milli::ZERO)
            .collect()
    }
}

/// A namespace's ResourceQuota share, as its watch shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Share {
    /// `spec.hard`.
    pub hard: Amounts,
    /// `status.used`.
    pub used: Amounts,
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// The tenancy as a whole would go over its limit.
    Tenancy {
        /// The resource.
        resource: String,
        /// What the request adds.
        requested: Milli,
        /// What the tenancy uses (including admissions in flight).
        used: Milli,
        /// The part of `used` admitted but not yet seen stored.
        in_flight: Milli,
        /// The tenancy's limit.
        limit: Milli,
    },
    /// The namespace would go over its current share; Commons moves free headroom to it.
    Share {
        /// The resource.
        resource: String,
        /// What the request adds.
        requested: Milli,
        /// What the namespace uses.
        used: Milli,
        /// Its share.
        share: Milli,
    },
}

impl Refusal {
    /// The resource the refusal is about.
    pub fn resource(&self) -> &str {
        match self {
            Refusal::Tenancy { resource, .. } | Refusal::Share { resource, .. } => resource,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Tenancy { resource, requested, used, in_flight, limit } => {
                write!(
                    f,
                    "exceeds the tenancy quota: {resource} requested {}, the tenancy's namespaces use {} of its limit of {}",
                    format_for(resource, *requested),
                    format_for(resource, *used),
                    format_for(resource, *limit)
                )?;
                if *in_flight > Milli::ZERO {
                    write!(
                        f,
                        " (of which {} was admitted moments ago and is not yet seen stored; it is held until it is, or for at most {} s if it never is)",
                        format_for(resource, *in_flight),
                        SETTLE.as_secs() + 10
                    )?;
                }
                Ok(())
            }
            Refusal::Share { resource, requested, used, share } => write!(
                f,
                "exceeds the namespace's current share of the tenancy quota: {resource} requested {}, used {} of a share of {}; Commons moves any free headroom of the tenancy to this namespace within seconds, so try again shortly",
                format_for(resource, *requested),
                format_for(resource, *used),
                format_for(resource, *share)
            ),
        }
    }
}

/// One tenancy's reservations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    reservations: Vec<Reservation>,
}

fn add(into: &mut Amounts, from: &Amounts) {
    for (k, v) in from {
        let e = into.entry(k.clone()).or_default();
        *e = *e + *v;
    }
}

fn covers(have: &Amounts, want: &Amounts) -> bool {
    want.iter().all(|(k, v)| have.get(k).copied().unwrap_or_default() >= *v)
}

fn larger(a: &Amounts, b: &Amounts) -> Amounts {
    let mut out = a.clone();
    for (k, v) in b {
        let e = out.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
    out
}

impl Ledger {
    /// The reservations held.
    pub fn reservations(&self) -> &[Reservation] {
        &self.reservations
    }

    /// Ends every reservation the watches now cover (the object is stored and counts at least
    /// as much). Returns how many ended.
    pub fn settle_observed(&mut self, observed: &Observed) -> usize {
        let before = self.reservations.len();
        self.reservations.retain(|r| !observed.get(&r.uid).is_some_and(|c| covers(&c.usage, &r.usage)));
        before - self.reservations.len()
    }

    /// Ends the reservation of `uid` (a fresh read after [`SETTLE`] found it absent).
    pub fn release(&mut self, uid: &str) -> bool {
        let before = self.reservations.len();
        self.reservations.retain(|r| r.uid != uid);
        before != self.reservations.len()
    }

    /// Reservations held for at least [`SETTLE`] at `now`, which a fresh read may end.
    pub fn unsettled(&self, now: f64) -> Vec<Reservation> {
        self.reservations.iter().filter(|r| now - r.at >= SETTLE.as_secs_f64()).cloned().collect()
    }

    /// What reservations add beyond what the watches show, by resource.
    pub fn in_flight(&self, observed: &Observed) -> Amounts {
        let mut out = Amounts::new();
        for r in &self.reservations {
            let seen = observed.get(&r.uid).map(|c| &c.usage);
            for (k, v) in &r.usage {
                let beyond = v.saturating_sub(seen.and_then(|u| u.get(k)).copied().unwrap_or_default());
                if beyond > Milli::ZERO {
                    let e = out.entry(k.clone()).or_default();
                    *e = *e + beyond;
                }
            }
        }
        out
    }

    /// What the tenancy uses, in total and by namespace: for each object the larger of what the
    /// watches show and what was reserved for it.
    pub fn usage(&self, observed: &Observed) -> (Amounts, BTreeMap<String, Amounts>) {
        let mut per_object: BTreeMap<&str, (&str, Amounts)> =
            observed.iter().map(|(uid, c)| (uid.as_str(), (c.namespace.as_str(), c.usage.clone()))).collect();
        for r in &self.reservations {
            per_object
                .entry(r.uid.as_str())
                .and_modify(|(_, u)| *u = larger(u, &r.usage))
                .or_insert((r.namespace.as_str(), r.usage.clone()));
        }
        let mut total = Amounts::new();
        let mut by_namespace: BTreeMap<String, Amounts> = BTreeMap::new();
        for (ns, usage) in per_object.values() {
            add(&mut total, usage);
            add(by_namespace.entry((*ns).to_owned()).or_default(), usage);
        }
        (total, by_namespace)
    }

    /// Decides `request` against the tenancy's `limits` and the namespace's `share` (if it has
    /// one), counting what the watches show and every reservation.
    pub fn decide(
        &self,
        request: &Request,
        limits: &Amounts,
        share: Option<&Share>,
        observed: &Observed,
    ) -> Result<(), Refusal> {
        let increase = request.increase();
        let (total, by_namespace) = self.usage(observed);
        // The request's own object is part of `total` already (seen or reserved) at what it counts
        // now; after admission it counts the larger of that and its new usage.
        for (resource, requested) in &increase {
            let Some(limit) = limits.get(resource) else { continue };
            let used = total.get(resource).copied().unwrap_or_default();
            let already = self.counted(request, observed, resource);
            let will = request.usage.get(resource).copied().unwrap_or_default();
            if used.saturating_sub(already) + already.max(will) > *limit {
                let in_flight = self.in_flight(observed).get(resource).copied().unwrap_or_default();
                return Err(Refusal::Tenancy {
                    resource: resource.clone(),
                    requested: *requested,
                    used,
                    in_flight,
                    limit: *limit,
                });
            }
        }
        if let Some(share) = share {
            let ns_usage = by_namespace.get(&request.namespace).cloned().unwrap_or_default();
            for (resource, requested) in &increase {
                let Some(hard) = share.hard.get(resource) else { continue };
                let ours = ns_usage.get(resource).copied().unwrap_or_default();
                let quota_says = share.used.get(resource).copied().unwrap_or_default();
                let used = ours.max(quota_says);
                if used + *requested > *hard {
                    return Err(Refusal::Share {
                        resource: resource.clone(),
                        requested: *requested,
                        used,
                        share: *hard,
                    });
                }
            }
        }
        Ok(())
    }

    /// What the request's own object already counts for `resource` (from the watches or an
    /// earlier reservation).
    fn counted(&self, request: &Request, observed: &Observed, resource: &str) -> Milli {
        let seen = observed.get(&request.uid).and_then(|c| c.usage.get(resource).copied());
        let reserved = self
            .reservations
            .iter()
            .filter(|r| r.uid == request.uid)
            .filter_map(|r| r.usage.get(resource).copied())
            .max();
        seen.into_iter().chain(reserved).max().unwrap_or_default()
    }

    /// Records an admitted request, replacing an earlier reservation of the same object; `true`
    /// when the object held none (the number of reservations grew by one).
    pub fn reserve(&mut self, request: &Request, at: f64) -> bool {
        let before = self.reservations.len();
        self.reservations.retain(|r| r.uid != request.uid);
        let new = before == self.reservations.len();
        self.reservations.push(Reservation {
            uid: request.uid.clone(),
            kind: request.kind,
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            usage: request.usage.clone(),
            at,
        });
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(pairs: &[(&str, i64)]) -> Amounts {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), Milli::units(*v))).collect()
    }

    fn create(uid: &str, ns: &str, usage: Amounts) -> Request {
        Request {
            uid: uid.into(),
            kind: Kind::Pod,
            namespace: ns.into(),
            name: uid.into(),
            usage,
            previous: Amounts::new(),
        }
    }

    fn seen(items: &[(&str, &str, Amounts)]) -> Observed {
        items
            .iter()
            .map(|(uid, ns, u)| {
                ((*uid).to_owned(), Charged { namespace: (*ns).to_owned(), usage: u.clone() })
            })
            .collect()
    }

    #[test]
    fn admissions_in_flight_count_until_the_watches_show_them() {
        let limits = a(&[("pods", 2)]);
        let mut ledger = Ledger::default();
        let none = Observed::new();
        for uid in ["p1", "p2"] {
            let r = create(uid, "t-a", a(&[("pods", 1)]));
            ledger.decide(&r, &limits, None, &none).unwrap();
            ledger.reserve(&r, 0.0);
        }
        // Nothing is in the watches yet, yet the third is refused.
        let third = create("p3", "t-b", a(&[("pods", 1)]));
        let refusal = ledger.decide(&third, &limits, None, &none).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Tenancy {
                resource: "pods".into(),
                requested: Milli::units(1),
                used: Milli::units(2),
                in_flight: Milli::units(2),
                limit: Milli::units(2)
            }
        );
        assert!(
            refusal.to_string().contains(
                "pods requested 1, the tenancy's namespaces use 2 of its limit of 2 (of which 2 was admitted moments ago"
            )
        );
        // The watches catch up: the reservations end and the object is counted once, not twice.
        let observed = seen(&[("p1", "t-a", a(&[("pods", 1)])), ("p2", "t-a", a(&[("pods", 1)]))]);
        assert_eq!(ledger.settle_observed(&observed), 2);
        assert!(ledger.reservations().is_empty());
        assert!(ledger.decide(&third, &limits, None, &observed).is_err());
        // A pod finishes (counts nothing now): room for one.
        let observed = seen(&[("p1", "t-a", Amounts::new()), ("p2", "t-a", a(&[("pods", 1)]))]);
        assert!(ledger.decide(&third, &limits, None, &observed).is_ok());
    }

    #[test]
    fn an_object_seen_and_reserved_counts_once_at_the_larger_amount() {
        let mut ledger = Ledger::default();
        let r = create("p1", "t-a", a(&[("pods", 1), ("requests.cpu", 2)]));
        ledger.reserve(&r, 0.0);
        let observed = seen(&[("p1", "t-a", a(&[("pods", 1), ("requests.cpu", 1)]))]);
        let (total, by_ns) = ledger.usage(&observed);
        assert_eq!(total, a(&[("pods", 1), ("requests.cpu", 2)]));
        assert_eq!(by_ns["t-a"], total);
        // Not covered yet (the watch shows less): the reservation stays.
        assert_eq!(ledger.settle_observed(&observed), 0);
    }

    #[test]
    fn an_update_is_charged_only_its_increase() {
        let limits = a(&[("requests.storage", 10)]);
        let observed = seen(&[("c1", "t-a", a(&[("requests.storage", 6)]))]);
        let ledger = Ledger::default();
        let grow = |to: i64| Request {
            uid: "c1".into(),
            kind: Kind::PersistentVolumeClaim,
            namespace: "t-a".into(),
            name: "data".into(),
            usage: a(&[("requests.storage", to)]),
            previous: a(&[("requests.storage", 6)]),
        };
        assert!(ledger.decide(&grow(10), &limits, None, &observed).is_ok());
        assert!(ledger.decide(&grow(11), &limits, None, &observed).is_err());
        // Shrinking or keeping the size adds nothing and is never refused.
        let full = seen(&[
            ("c1", "t-a", a(&[("requests.storage", 6)])),
            ("c2", "t-b", a(&[("requests.storage", 4)])),
        ]);
        assert!(ledger.decide(&grow(6), &limits, None, &full).is_ok());
        assert!(ledger.decide(&grow(3), &limits, None, &full).is_ok());
        assert!(ledger.decide(&grow(7), &limits, None, &full).is_err());
    }

    #[test]
    fn the_namespace_share_is_checked_with_the_larger_of_both_counts() {
        let limits = a(&[("pods", 12)]);
        let ledger = Ledger::default();
        let observed = seen(&[("p1", "t-a", a(&[("pods", 1)]))]);
        let r = create("p9", "t-a", a(&[("pods", 1)]));
        let share = |hard: i64, used: i64| Share { hard: a(&[("pods", hard)]), used: a(&[("pods", used)]) };
        assert!(ledger.decide(&r, &limits, Some(&share(2, 1)), &observed).is_ok());
        // The ResourceQuota already counts two (an admission we have not seen): refused.
        let refusal = ledger.decide(&r, &limits, Some(&share(2, 2)), &observed).unwrap_err();
        assert!(matches!(refusal, Refusal::Share { .. }), "{refusal:?}");
        assert!(refusal.to_string().contains("used 2 of a share of 2"), "{refusal}");
        // Our count is higher than the quota's (its recount lags): refused as well.
        let observed = seen(&[("p1", "t-a", a(&[("pods", 1)])), ("p2", "t-a", a(&[("pods", 1)]))]);
        assert!(ledger.decide(&r, &limits, Some(&share(2, 0)), &observed).is_err());
        // Resources the request does not add to are never refused.
        let r = create("s1", "t-a", a(&[("services.loadbalancers", 0)]));
        assert!(
            ledger.decide(&r, &a(&[("services.loadbalancers", 0)]), Some(&share(0, 0)), &observed).is_ok()
        );
    }

    #[test]
    fn reservations_are_released_only_after_they_settle() {
        let mut ledger = Ledger::default();
        ledger.reserve(&create("p1", "t-a", a(&[("pods", 1)])), 10.0);
        assert!(ledger.unsettled(10.0 + SETTLE.as_secs_f64() - 1.0).is_empty());
        let due = ledger.unsettled(10.0 + SETTLE.as_secs_f64());
        assert_eq!(due.len(), 1);
        assert!(ledger.release("p1"));
        assert!(!ledger.release("p1"));
        // Reserving the same object again replaces its reservation, and says it added none.
        assert!(ledger.reserve(&create("p2", "t-a", a(&[("pods", 1)])), 0.0));
        assert!(!ledger.reserve(&create("p2", "t-a", a(&[("pods", 1), ("requests.cpu", 1)])), 1.0));
        assert_eq!(ledger.reservations().len(), 1);
    }

    #[test]
    fn many_racing_admissions_never_exceed_the_limit() {
        // Interleave admissions in three namespaces with the watches lagging by a varying amount
        // (a watch moves only forward).
        let limits = a(&[("pods", 12)]);
        let mut ledger = Ledger::default();
        let mut stored: Vec<(String, String)> = Vec::new();
        let mut admitted = 0;
        let mut visible = 0;
        for i in 0..300 {
            let ns = ["t-a", "t-b", "t-c"][i % 3];
            let uid = format!("p{i}");
            // The watches show only what was stored up to a lagging point.
            visible = visible.max(stored.len().saturating_sub(i % 5));
            let observed: Observed = stored[..visible]
                .iter()
                .map(|(u, n)| (u.clone(), Charged { namespace: n.clone(), usage: a(&[("pods", 1)]) }))
                .collect();
            ledger.settle_observed(&observed);
            let r = create(&uid, ns, a(&[("pods", 1)]));
            if ledger.decide(&r, &limits, None, &observed).is_ok() {
                ledger.reserve(&r, 0.0);
                stored.push((uid, ns.into()));
                admitted += 1;
            }
        }
        assert_eq!(admitted, 12);
    }
}

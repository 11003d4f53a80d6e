//! Demand the quota webhook saw: a namespace refused because its share was used up while the
//! tenancy still had headroom elsewhere.
//!
//! A namespace with no usage gives the quota planner no sign of wanting more; a refused request
//! is that sign. The webhook records it here and asks for the tenancy to be reconciled, and the
//! planner then treats the namespace as starved for that resource, so free headroom moves to it
//! within seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use commons_crds::tenancy::Tenancy;
use futures::channel::mpsc;
use kube::runtime::reflector::ObjectRef;

use crate::quantity::Milli;
use crate::tenancy::quota::Amounts;

/// How long a refusal counts as demand.
pub const FRESH: Duration = Duration::from_secs(60);

/// Recent refusals by namespace and resource, and the trigger that reconciles their tenancy.
#[derive(Debug)]
pub struct Demand {
    seen: Mutex<HashMap<(String, String), (Milli, Instant)>>,
    trigger: mpsc::UnboundedSender<ObjectRef<Tenancy>>,
}

impl Demand {
    /// A new register and the stream of tenancies to reconcile.
    pub fn new() -> (Demand, mpsc::UnboundedReceiver<ObjectRef<Tenancy>>) {
        let (trigger, rx) = mpsc::unbounded();
        (Demand { seen: Mutex::default(), trigger }, rx)
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
    }
}

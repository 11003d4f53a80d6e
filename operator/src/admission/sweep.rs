//! Reservations end: when the watches show the admitted object, or when a fresh read finds it was
//! never stored.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::Api;
use kube::runtime::reflector::ObjectRef;

use super::ledger::{self, Kind, Ledger, Request};
use super::{Admission, usage};
use crate::tenancy::quota::Amounts;

/// How long the sweep waits for one fresh read of an admitted object.
const FRESH_READ: std::time::Duration = std::time::Duration::from_secs(5);

impl Admission {
    pub(super) fn count_settled(&self, n: usize, how: &str) {
        if n > 0 {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.metrics.reservations.sub(n);
            self.metrics.settled.with_label_values(&[how]).inc_by(n.unsigned_abs());
        }
    }

    /// Ends reservations the watches now show, and those held past [`ledger::SETTLE`] whose
    /// object a fresh read finds absent (its creation failed after the webhook).
    pub(super) async fn sweep(&self) {
        let tenancies: Vec<(String, Arc<std::sync::Mutex<Ledger>>)> = {
            let ledgers = self.ledgers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            ledgers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (tenancy, shared) in tenancies {
            let unsettled = {
                let mut ledger = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if ledger.reservations().is_empty()
                    && self.stores.tenancies.get(&ObjectRef::new(&tenancy)).is_none()
                {
                    // The tenancy is gone: forget its (empty) ledger, unless a decision is under way.
                    let lock = self.demand.tenancy_lock(&tenancy);
                    if let Ok(_turn) = lock.try_lock() {
                        let mut ledgers =
                            self.ledgers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if ledgers.get(&tenancy).is_some_and(|l| Arc::ptr_eq(l, &shared)) {
                            ledgers.remove(&tenancy);
                        }
                    }
                    drop(lock);
                    self.demand.forget(&tenancy);
                    continue;
                }
                let observed = self.observed(&tenancy);
                let settled = ledger.settle_observed(&observed);
                self.count_settled(settled, "observed");
                ledger.unsettled(self.now())
            };
            if unsettled.is_empty() {
                continue;
            }
            let members: std::collections::BTreeSet<String> = self
                .stores
                .by_tenancy
                .in_group(&tenancy)
                .iter()
                .map(|ns| kube::ResourceExt::name_any(ns.as_ref()))
                .collect();
            for r in unsettled {
                // A read left hanging (an apiserver restarting under it) must not stop the sweeps.
                let fresh = match tokio::time::timeout(FRESH_READ, self.fresh_usage(&r)).await {
                    Ok(fresh) => fresh,
                    Err(_) => {
                        tracing::warn!(
                            kind = r.kind.as_str(),
                            namespace = r.namespace,
                            name = r.name,
                            "an admitted object was not read within {}s; its reservation stays until the next sweep",
                            FRESH_READ.as_secs()
                        );
                        continue;
                    }
                };
                let mut ledger = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match fresh {
                    // Stored, in a namespace that is no longer the tenancy's (removed from it and
                    // kept, or going with a deleted tenancy): the watches will never count it for
                    // this tenancy, and its quota no longer holds it.
                    Ok(Some(_)) if !members.contains(&r.namespace) => {
                        self.release(&mut ledger, &tenancy, &r, "left", "whose namespace left the tenancy");
                    }
                    // Stored, and counting nothing now (a pod finished, or past its deletion's
                    // grace): nothing to hold for it.
                    Ok(Some(usage)) if usage.values().all(|v| *v == crate::quantity::Milli::default()) => {
                        self.release(
                            &mut ledger,
                            &tenancy,
                            &r,
                            "uncharged",
                            "that no longer counts (finished or going)",
                        );
                    }
                    Ok(Some(usage)) => {
                        // Stored but not yet in the watches: keep counting what it counts now.
                        tracing::info!(
                            tenancy,
                            kind = r.kind.as_str(),
                            namespace = r.namespace,
                            name = r.name,
                            held = ?r.usage,
                            stored = ?usage,
                            "an admitted object is stored but its watch does not show it yet; its quota stays held"
                        );
                        let again = Request {
                            uid: r.uid.clone(),
                            kind: r.kind,
                            namespace: r.namespace.clone(),
                            name: r.name.clone(),
                            usage,
                            previous: Amounts::new(),
                        };
                        ledger.reserve(&again, self.now());
                    }
                    Ok(None) => self.release(&mut ledger, &tenancy, &r, "absent", "that was never stored"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read an admitted object; its reservation stays")
                    }
                }
            }
        }
        self.recount();
        self.metrics.sweeps.inc();
    }

    /// Sets the reservations gauge to the number the ledgers hold (one ledger locked at a time).
    fn recount(&self) {
        let ledgers: Vec<Arc<std::sync::Mutex<Ledger>>> = {
            let ledgers = self.ledgers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            ledgers.values().cloned().collect()
        };
        let held: usize = ledgers
            .iter()
            .map(|l| l.lock().unwrap_or_else(std::sync::PoisonError::into_inner).reservations().len())
            .sum();
        self.metrics.reservations.set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    /// Ends the reservation `r` of `tenancy`, counted as `how` and logged with `why`.
    fn release(&self, ledger: &mut Ledger, tenancy: &str, r: &ledger::Reservation, how: &str, why: &str) {
        if ledger.release(&r.uid) {
            tracing::info!(
                tenancy,
                kind = r.kind.as_str(),
                namespace = r.namespace,
                name = r.name,
                "released the quota held for an admitted object {why}"
            );
            self.count_settled(1, how);
        }
    }

    /// What the object of a reservation counts now, read afresh; `None` when it does not exist
    /// (or is another object of the same name).
    async fn fresh_usage(
        &self,
        r: &ledger::Reservation,
    ) -> std::result::Result<Option<Amounts>, kube::Error> {
        let ns = &r.namespace;
        let same = |uid: &Option<String>| uid.as_deref() == Some(r.uid.as_str());
        Ok(match r.kind {
            Kind::Pod => Api::<Pod>::namespaced(self.client.clone(), ns)
                .get_opt(&r.name)
                .await?
                .filter(|p| same(&p.metadata.uid))
                .map(|p| {
                    if usage::pod_is_charged(&p, jiff::Timestamp::now().as_second()) {
                        usage::pod(&p)
                    } else {
                        Amounts::new()
                    }
                }),
            Kind::PersistentVolumeClaim => Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns)
                .get_opt(&r.name)
                .await?
                .filter(|c| same(&c.metadata.uid))
                .map(|c| usage::persistent_volume_claim(&c)),
            Kind::Service => Api::<Service>::namespaced(self.client.clone(), ns)
                .get_opt(&r.name)
                .await?
                .filter(|s| same(&s.metadata.uid))
                .map(|s| usage::service(&s)),
        })
    }
}

//! The quota admission webhook: a strict tenancy-wide limit, checked before anything is stored.
//!
//! The per-namespace ResourceQuota shares (see [`crate::tenancy::quota`]) are the second line:
//! the controller manager's recount of a ResourceQuota, made from a lagging cache, can briefly
//! lower its `used` and let the apiserver admit past a share. This webhook counts the whole
//! tenancy itself — every pod, claim and load balancer its namespaces hold, plus every admission
//! still in flight ([`ledger`]) — and decides one request of a tenancy at a time.

mod cert_expiry;
mod decide;
pub mod index;
pub mod ledger;
mod metrics;
mod policy;
pub mod registration;
pub mod route;
mod server;
mod stores;
mod subscription;
mod sweep;
pub mod tls;
pub mod usage;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use commons_crds::labels;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};

use crate::tenancy::desired;
use crate::tenancy::quota::Amounts;
use ledger::{Charged, Ledger, Observed, Refusal, Share};

/// How often reservations are checked.
const SWEEP: Duration = Duration::from_secs(5);

pub use metrics::Metrics;
pub use server::{Serve, serve};
use stores::Stores;

/// The outcome of one attempt at a decision.
enum Decision {
    Done(std::result::Result<(), Refusal>),
    /// Decide again at this instant, when a raised share has settled.
    WaitUntil(std::time::Instant),
}

/// The webhook's shared state.
pub struct Admission {
    client: Client,
    watches: crate::watch::Watches,
    stores: Stores,
    ledgers: std::sync::Mutex<HashMap<String, Arc<std::sync::Mutex<Ledger>>>>,
    started: Instant,
    metrics: Metrics,
    demand: Arc<crate::tenancy::demand::Demand>,
    settings: Settings,
    /// Set when Commons stops: its watches and sweep stop with it, so no review is decided after.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// What the operator sets for every tenancy's policy.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The registries images may come from in tenancies that list none (`--allowed-registries`);
    /// `None` for any.
    pub default_registries: Option<Vec<String>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").finish_non_exhaustive()
    }
}

impl Admission {
    /// Starts the watches and the reservation sweeper.
    pub fn start(
        watches: &crate::watch::Watches,
        shared: &mut crate::reflectors::Shared,
        metrics: Metrics,
        demand: Arc<crate::tenancy::demand::Demand>,
        settings: Settings,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Admission> {
        let client = watches.client().clone();
        let stores = Stores::start(watches, shared, &stop);
        let admission = Arc::new(Admission {
            client,
            watches: watches.clone(),
            stores,
            ledgers: std::sync::Mutex::default(),
            stopping: stop.clone(),
            started: Instant::now(),
            metrics,
            demand,
            settings,
        });
        let weak = Arc::downgrade(&admission);
        admission.demand.count_with(Box::new(move |tenancy| {
            weak.upgrade().map(|a| a.namespace_usage(tenancy)).unwrap_or_default()
        }));
        let sweeper = admission.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SWEEP);
            let stopped = crate::shutdown::stopped(stop);
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    _ = ticker.tick() => sweeper.sweep().await,
                    () = &mut stopped => return,
                }
            }
        });
        admission
    }

    /// Whether Commons is stopping (reviews are then refused, never decided on stopped watches).
    pub fn stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// `Ok` once every watch the check counts from has had its first full list.
    pub fn ready(&self) -> std::result::Result<(), String> {
        if self.stores.synced() {
            Ok(())
        } else {
            Err("the quota webhook's watches (tenancies, namespaces, pods, claims, services, quotas, priority classes) are still filling".into())
        }
    }

    /// The axum router serving [`registration::PATH`].
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route(registration::PATH, post(server::handle)).with_state(self.clone())
    }

    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn ledger(&self, tenancy: &str) -> Arc<std::sync::Mutex<Ledger>> {
        let mut ledgers = self.ledgers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ledgers.entry(tenancy.to_owned()).or_default().clone()
    }

    /// The tenancy a namespace belongs to: from the watch, or read afresh for a namespace made a
    /// moment ago.
    async fn tenancy_of(&self, namespace: &str) -> std::result::Result<Option<String>, kube::Error> {
        let from = |ns: &Namespace| ns.labels().get(labels::TENANCY).cloned();
        if let Some(ns) = self.stores.namespaces.get(&ObjectRef::new(namespace)) {
            return Ok(from(&ns));
        }
        Ok(Api::<Namespace>::all(self.client.clone()).get_opt(namespace).await?.as_ref().and_then(from))
    }

    /// The tenancy `namespace` belongs to, with its name; `None` outside tenancies, or when the
    /// tenancy is gone (its namespaces are being deleted: nothing to check against). `Err` says
    /// that the `check` cannot be made now.
    async fn tenancy_of_namespace(
        &self,
        namespace: &str,
        check: &str,
    ) -> std::result::Result<Option<(String, Arc<Tenancy>)>, String> {
        let unavailable =
            |e: kube::Error| format!("Commons cannot check the tenancy's {check} right now ({e}); try again");
        let Some(name) = self.tenancy_of(namespace).await.map_err(unavailable)? else {
            return Ok(None);
        };
        Ok(self.tenancy(&name).await.map_err(unavailable)?.map(|t| (name, t)))
    }

    async fn tenancy(&self, name: &str) -> std::result::Result<Option<Arc<Tenancy>>, kube::Error> {
        if let Some(t) = self.stores.tenancies.get(&ObjectRef::new(name)) {
            return Ok(Some(t));
        }
        Ok(Api::<Tenancy>::all(self.client.clone()).get_opt(name).await?.map(Arc::new))
    }

    /// Everything the tenancy's namespaces hold that counts, by uid, from the watches.
    fn observed(&self, tenancy: &str) -> Observed {
        let namespaces: BTreeSet<String> =
            self.stores.by_tenancy.in_group(tenancy).iter().map(|ns| ns.name_any()).collect();
        let now = jiff::Timestamp::now().as_second();
        let mut out = Observed::new();
        let mut put = |uid: Option<String>, namespace: Option<String>, usage: Amounts| {
            if let (Some(uid), Some(namespace)) = (uid, namespace) {
                out.insert(uid, Charged { namespace, usage });
            }
        };
        for p in self.stores.pods.in_namespaces(&namespaces) {
            let charged = if usage::pod_is_charged(&p, now) { usage::pod(&p) } else { Amounts::new() };
            put(p.metadata.uid.clone(), p.metadata.namespace.clone(), charged);
        }
        for c in self.stores.claims.in_namespaces(&namespaces) {
            put(c.metadata.uid.clone(), c.metadata.namespace.clone(), usage::persistent_volume_claim(&c));
        }
        for s in self.stores.services.in_namespaces(&namespaces) {
            put(s.metadata.uid.clone(), s.metadata.namespace.clone(), usage::service(&s));
        }
        out
    }

    fn share(&self, namespace: &str) -> Option<Share> {
        let stored = self.stores.quotas.get(&ObjectRef::new(desired::QUOTA_NAME).within(namespace))?;
        // The tenancy's own limit still holds without a share; a quota the store cannot decode
        // is a fault of Commons' own, logged.
        let rq = stored
            .object()
            .inspect_err(|e| tracing::warn!(%namespace, error = %e, "cannot decode the stored ResourceQuota"))
            .ok()?;
        let parse = crate::quantity::amounts;
        Some(Share {
            hard: parse(rq.spec.as_ref().and_then(|s| s.hard.as_ref())),
            used: parse(rq.status.as_ref().and_then(|s| s.used.as_ref())),
        })
    }

    /// What each namespace of `tenancy` uses as the webhook counts it: the watches plus every
    /// admission in flight.
    pub fn namespace_usage(&self, tenancy: &str) -> std::collections::BTreeMap<String, Amounts> {
        let ledger = self.ledger(tenancy);
        let ledger = ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ledger.usage(&self.observed(tenancy)).1
    }
}

//! The quota admission webhook: a strict tenancy-wide limit, checked before anything is stored.
//!
//! The per-namespace ResourceQuota shares (see [`crate::tenancy::quota`]) are the second line:
//! the controller manager's recount of a ResourceQuota, made from a lagging cache, can briefly
//! lower its `used` and let the apiserver admit past a share. This webhook counts the whole
//! tenancy itself — every pod, claim and load balancer its namespaces hold, plus every admission
//! still in flight ([`ledger`]) — and decides one request of a tenancy at a time.

pub mod index;
pub mod ledger;
pub mod registration;
pub mod tls;
pub mod usage;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use commons_crds::labels;
use commons_crds::tenancy::Tenancy;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, ResourceQuota, Service};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::quantity::Milli;
use crate::tenancy::quota::Amounts;
use crate::tenancy::{desired, status};
use crate::watch::Synced;
use index::ByNamespace;
use ledger::{Charged, Kind, Ledger, Observed, Refusal, Request, Share};

/// How often reservations are checked.
const SWEEP: Duration = Duration::from_secs(5);

/// The webhook's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Decisions, by kind and outcome (`admitted`, `refused`, `unavailable`).
    pub decisions: IntCounterVec,
    /// How long a decision takes.
    pub duration: HistogramVec,
    /// Reservations held now.
    pub reservations: IntGauge,
    /// Reservations ended, by how (`observed`, `absent`).
    pub settled: IntCounterVec,
    /// Changed certificate files taken up (`reloaded`) or not (`refused`).
    pub certificates: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &prometheus::Registry) -> Result<Self> {
        let decisions = IntCounterVec::new(
            Opts::new("admission_decisions_total", "Quota admission decisions, by kind and outcome."),
            &["kind", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("admission_duration_seconds", "How long a quota admission decision takes.")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
            &["kind"],
        )?;
        let reservations =
            IntGauge::new("admission_reservations", "Admissions not yet seen in the watches.")?;
        let settled = IntCounterVec::new(
            Opts::new("admission_reservations_settled_total", "Reservations ended, by how."),
            &["how"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(reservations.clone()))?;
        let certificates = IntCounterVec::new(
            Opts::new(
                "webhook_certificate_reloads_total",
                "Changed webhook certificate files, taken up (reloaded) or not (refused).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(settled.clone()))?;
        registry.register(Box::new(certificates.clone()))?;
        Ok(Metrics { decisions, duration, reservations, settled, certificates })
    }
}

/// The watches the quota check counts from.
#[derive(Clone)]
struct Stores {
    tenancies: Store<Tenancy>,
    namespaces: Store<Namespace>,
    pods: ByNamespace<Pod>,
    claims: ByNamespace<PersistentVolumeClaim>,
    services: ByNamespace<Service>,
    quotas: Store<ResourceQuota>,
}

impl Stores {
    fn synced(&self) -> bool {
        [
            self.tenancies.synced(),
            self.namespaces.synced(),
            Some(self.pods.synced()),
            Some(self.claims.synced()),
            Some(self.services.synced()),
            self.quotas.synced(),
        ]
        .iter()
        .all(|s| *s == Some(true))
    }
}

/// The outcome of one attempt at a decision.
enum Decision {
    Done(std::result::Result<(), Refusal>),
    /// Decide again at this instant, when a raised share has settled.
    WaitUntil(std::time::Instant),
}

/// The webhook's shared state.
pub struct Admission {
    client: Client,
    stores: Stores,
    ledgers: std::sync::Mutex<HashMap<String, Arc<std::sync::Mutex<Ledger>>>>,
    started: Instant,
    metrics: Metrics,
    demand: Arc<crate::tenancy::demand::Demand>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").finish_non_exhaustive()
    }
}

/// Starts the watches the quota check needs, each until `shutdown`; the stores fill in the
/// background (the check refuses, asking to retry, until they have).
fn start_watch<K>(
    watches: &crate::watch::Watches,
    config: watcher::Config,
    strip: fn(&mut K),
    stop: tokio::sync::watch::Receiver<bool>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream =
        watches.events::<K>(config).modify(strip).reflect(writer).take_until(crate::run::stopped(stop));
    tokio::spawn(async move {
        stream
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "admission watch error");
                }
            })
            .await;
    });
    store
}

/// Starts a watch that keeps its objects by namespace, until `shutdown`.
fn start_indexed_watch<K>(
    watches: &crate::watch::Watches,
    strip: fn(&mut K),
    stop: tokio::sync::watch::Receiver<bool>,
) -> ByNamespace<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let index = ByNamespace::default();
    let stream =
        watches.events::<K>(watcher::Config::default()).modify(strip).take_until(crate::run::stopped(stop));
    let writer = index.clone();
    tokio::spawn(async move {
        stream
            .for_each(|r| {
                match r {
                    Ok(event) => writer.apply(&event),
                    Err(e) => tracing::debug!(error = %e, "admission watch error"),
                }
                std::future::ready(())
            })
            .await;
    });
    index
}

/// Keeps only what counting needs: the pods of a large cluster are held in memory.
fn strip_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    pod.metadata.labels = None;
    pod.metadata.owner_references = None;
    if let Some(spec) = pod.spec.as_mut() {
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            c.env = None;
            c.env_from = None;
            c.args = None;
            c.command = None;
            c.volume_mounts = None;
            c.ports = None;
            c.liveness_probe = None;
            c.readiness_probe = None;
            c.startup_probe = None;
        }
        spec.volumes = None;
        spec.affinity = None;
        spec.tolerations = None;
    }
    if let Some(status) = pod.status.as_mut() {
        // What counting reads: the phase, and what an in-place resize under way has allocated and
        // runs (usage::pod).
        let kept = k8s_openapi::api::core::v1::PodStatus {
            phase: status.phase.take(),
            conditions: status
                .conditions
                .take()
                .map(|cs| cs.into_iter().filter(|c| c.type_ == usage::RESIZE_PENDING).collect::<Vec<_>>())
                .filter(|cs| !cs.is_empty()),
            container_statuses: status.container_statuses.take().map(strip_container_statuses),
            init_container_statuses: status.init_container_statuses.take().map(strip_container_statuses),
            ..Default::default()
        };
        *status = kept;
    }
}

fn strip_container_statuses(
    statuses: Vec<k8s_openapi::api::core::v1::ContainerStatus>,
) -> Vec<k8s_openapi::api::core::v1::ContainerStatus> {
    statuses
        .into_iter()
        .filter(|cs| cs.resources.is_some() || cs.allocated_resources.is_some())
        .map(|cs| k8s_openapi::api::core::v1::ContainerStatus {
            name: cs.name,
            allocated_resources: cs.allocated_resources,
            resources: cs.resources.map(|r| k8s_openapi::api::core::v1::ResourceRequirements {
                requests: r.requests,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

fn strip_meta<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
}

impl Admission {
    /// Starts the watches and the reservation sweeper.
    pub fn start(
        watches: &crate::watch::Watches,
        metrics: Metrics,
        demand: Arc<crate::tenancy::demand::Demand>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Admission> {
        let client = watches.client().clone();
        let managed = crate::watch::managed_or_all(false);
        let stores = Stores {
            tenancies: start_watch(watches, watcher::Config::default(), strip_meta::<Tenancy>, stop.clone()),
            namespaces: start_watch(watches, managed.clone(), strip_meta::<Namespace>, stop.clone()),
            pods: start_indexed_watch(watches, strip_pod, stop.clone()),
            claims: start_indexed_watch(watches, strip_meta::<PersistentVolumeClaim>, stop.clone()),
            services: start_indexed_watch(watches, strip_meta::<Service>, stop.clone()),
            quotas: start_watch(watches, managed, strip_meta::<ResourceQuota>, stop.clone()),
        };
        let admission = Arc::new(Admission {
            client,
            stores,
            ledgers: std::sync::Mutex::default(),
            started: Instant::now(),
            metrics,
            demand,
        });
        let weak = Arc::downgrade(&admission);
        admission.demand.count_with(Box::new(move |tenancy| {
            weak.upgrade().map(|a| a.namespace_usage(tenancy)).unwrap_or_default()
        }));
        let sweeper = admission.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SWEEP);
            let stopped = crate::run::stopped(stop);
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

    /// `Ok` once every watch the check counts from has had its first full list.
    pub fn ready(&self) -> std::result::Result<(), String> {
        if self.stores.synced() {
            Ok(())
        } else {
            Err("the quota webhook's watches (tenancies, namespaces, pods, claims, services, quotas) are still filling".into())
        }
    }

    /// The axum router serving [`registration::PATH`].
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route(registration::PATH, post(handle)).with_state(self.clone())
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

    async fn tenancy(&self, name: &str) -> std::result::Result<Option<Arc<Tenancy>>, kube::Error> {
        if let Some(t) = self.stores.tenancies.get(&ObjectRef::new(name)) {
            return Ok(Some(t));
        }
        Ok(Api::<Tenancy>::all(self.client.clone()).get_opt(name).await?.map(Arc::new))
    }

    /// Everything the tenancy's namespaces hold that counts, by uid, from the watches.
    fn observed(&self, tenancy: &str) -> Observed {
        let namespaces: BTreeSet<String> = self
            .stores
            .namespaces
            .state()
            .iter()
            .filter(|ns| ns.labels().get(labels::TENANCY).is_some_and(|t| t == tenancy))
            .map(|ns| ns.name_any())
            .collect();
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
        let rq = self.stores.quotas.get(&ObjectRef::new(desired::QUOTA_NAME).within(namespace))?;
        let parse = |m: Option<
            &std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >|
         -> Amounts {
            m.into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.0.parse::<Milli>().ok()?)))
                .collect()
        };
        Some(Share {
            hard: parse(rq.spec.as_ref().and_then(|s| s.hard.as_ref())),
            used: parse(rq.status.as_ref().and_then(|s| s.used.as_ref())),
        })
    }

    /// Decides one admission request.
    pub async fn review(&self, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let allow = AdmissionResponse::from(req);
        let Some(kind) = kind_of(req) else {
            return allow;
        };
        let timer = self.metrics.duration.with_label_values(&[kind.as_str()]).start_timer();
        let outcome = self.decide(req, kind).await;
        timer.observe_duration();
        let (label, response) = match outcome {
            Ok(None) => ("admitted", allow),
            Ok(Some(refusal)) => ("refused", refuse(allow, 403, "Forbidden", &refusal)),
            Err(unavailable) => ("unavailable", refuse(allow, 503, "ServiceUnavailable", &unavailable)),
        };
        self.metrics.decisions.with_label_values(&[kind.as_str(), label]).inc();
        response
    }

    /// `Ok(None)` to admit, `Ok(Some(why))` to refuse, `Err(why)` when the check cannot be made
    /// now (refused too: admitting unchecked could break the limit).
    async fn decide(
        &self,
        req: &AdmissionRequest<DynamicObject>,
        kind: Kind,
    ) -> std::result::Result<Option<String>, String> {
        let namespace = req.namespace.clone().unwrap_or_default();
        let unavailable =
            |e: kube::Error| format!("Commons cannot check the tenancy quota right now ({e}); try again");
        let Some(tenancy_name) = self.tenancy_of(&namespace).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let Some(tenancy) = self.tenancy(&tenancy_name).await.map_err(unavailable)? else {
            // The tenancy is gone and its namespaces are being deleted: nothing to charge to.
            return Ok(None);
        };
        let (stage, _) = status::expiry(jiff::Timestamp::now(), tenancy.spec.expires_at.as_ref());
        if kind == Kind::Pod && req.operation == Operation::Create {
            if stage == status::Expiry::Expired {
                return Ok(Some(format!(
                    "tenancy {tenancy_name:?} passed its expiry date (spec.expiresAt) and is suspended: no new pods start"
                )));
            }
            if tenancy.spec.suspended {
                return Ok(Some(format!(
                    "tenancy {tenancy_name:?} is suspended (spec.suspended): no new pods start"
                )));
            }
        }
        let limits = desired::quota_limits(&tenancy)
            .map_err(|e| format!("tenancy {tenancy_name:?} spec.quota: {e}"))?;
        let request =
            request_of(req, kind, &namespace).map_err(|e| format!("cannot read the object: {e}"))?;
        if !request.increase().keys().any(|r| limits.contains_key(r)) {
            return Ok(None);
        }
        if !self.stores.synced() {
            return Err("Commons is starting and has not counted the tenancy's usage yet; try again".into());
        }
        // A share raised moments ago is waited for, once, rather than refused (a refused client
        // retries, and meanwhile another namespace's demand could take the headroom back).
        let mut waited = false;
        loop {
            // One decision per tenancy at a time, and none while the planner lowers its shares.
            let tenancy_lock = self.demand.tenancy_lock(&tenancy_name);
            let turn = tenancy_lock.lock().await;
            match self.decide_now(&tenancy_name, &namespace, &request, &limits, req.dry_run, waited) {
                Decision::Done(Ok(())) => return Ok(None),
                Decision::Done(Err(refusal)) => {
                    if let Refusal::Share { resource, requested, .. } = &refusal {
                        // The tenancy has headroom, this namespace's share has not: move it here.
                        self.demand.record(&tenancy_name, &namespace, resource, *requested);
                    }
                    return Ok(Some(message(&tenancy_name, &namespace, kind, &refusal)));
                }
                Decision::WaitUntil(settled) => {
                    drop(turn);
                    tokio::time::sleep_until(settled.into()).await;
                    waited = true;
                }
            }
        }
    }

    /// Decides `request` now (call with the tenancy lock held), or says until when to wait: when
    /// only a share raised moments ago refuses it and it has not `waited` already.
    fn decide_now(
        &self,
        tenancy: &str,
        namespace: &str,
        request: &Request,
        limits: &Amounts,
        dry_run: bool,
        waited: bool,
    ) -> Decision {
        let ledger = self.ledger(tenancy);
        let mut ledger = ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let observed = self.observed(tenancy);
        let settled = ledger.settle_observed(&observed);
        self.count_settled(settled, "observed");
        let watched = self.share(namespace);
        // A share being lowered counts at once, before the watch shows it; a share raised moments
        // ago counts once the apiserver's own quota admission surely sees it too.
        let pins = self.demand.pinned(namespace);
        let share = watched.clone().map(|mut share| {
            for (resource, pin) in &pins.hard {
                if let Some(hard) = share.hard.get_mut(resource) {
                    *hard = (*hard).min(*pin);
                }
            }
            share
        });
        let decision = ledger.decide(request, limits, share.as_ref(), &observed);
        if let (Err(Refusal::Share { .. }), Some(settles), false) = (&decision, pins.raise_settles, waited)
            && ledger.decide(request, limits, watched.as_ref(), &observed).is_ok()
        {
            return Decision::WaitUntil(settles);
        }
        if decision.is_ok() && !dry_run {
            ledger.reserve(request, self.now());
            self.metrics.reservations.inc();
        }
        Decision::Done(decision)
    }

    fn count_settled(&self, n: usize, how: &str) {
        if n > 0 {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.metrics.reservations.sub(n);
            self.metrics.settled.with_label_values(&[how]).inc_by(n.unsigned_abs());
        }
    }

    /// Ends reservations the watches now show, and those held past [`ledger::SETTLE`] whose
    /// object a fresh read finds absent (its creation failed after the webhook).
    async fn sweep(&self) {
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
            for r in unsettled {
                let fresh = self.fresh_usage(&r).await;
                let mut ledger = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match fresh {
                    Ok(Some(usage)) => {
                        // Stored but not yet in the watches: keep counting what it counts now.
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
                    Ok(None) => {
                        if ledger.release(&r.uid) {
                            tracing::info!(
                                tenancy,
                                kind = r.kind.as_str(),
                                namespace = r.namespace,
                                name = r.name,
                                "released the quota held for an admitted object that was never stored"
                            );
                            self.count_settled(1, "absent");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read an admitted object; its reservation stays")
                    }
                }
            }
        }
    }

    /// What each namespace of `tenancy` uses as the webhook counts it: the watches plus every
    /// admission in flight.
    pub fn namespace_usage(&self, tenancy: &str) -> std::collections::BTreeMap<String, Amounts> {
        let ledger = self.ledger(tenancy);
        let ledger = ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ledger.usage(&self.observed(tenancy)).1
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

fn kind_of(req: &AdmissionRequest<DynamicObject>) -> Option<Kind> {
    if !req.kind.group.is_empty() {
        return None;
    }
    match (req.kind.kind.as_str(), &req.operation, req.sub_resource.as_deref()) {
        ("Pod", Operation::Create, None) | ("Pod", Operation::Update, Some("resize")) => Some(Kind::Pod),
        ("PersistentVolumeClaim", Operation::Create | Operation::Update, None) => {
            Some(Kind::PersistentVolumeClaim)
        }
        ("Service", Operation::Create | Operation::Update, None) => Some(Kind::Service),
        _ => None,
    }
}

fn convert<K: DeserializeOwned>(obj: &DynamicObject) -> std::result::Result<K, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(obj)?)
}

fn usage_of(kind: Kind, obj: &DynamicObject) -> std::result::Result<Amounts, serde_json::Error> {
    Ok(match kind {
        Kind::Pod => usage::pod(&convert::<Pod>(obj)?),
        Kind::PersistentVolumeClaim => usage::persistent_volume_claim(&convert(obj)?),
        Kind::Service => usage::service(&convert(obj)?),
    })
}

fn request_of(
    req: &AdmissionRequest<DynamicObject>,
    kind: Kind,
    namespace: &str,
) -> std::result::Result<Request, String> {
    let obj = req.object.as_ref().ok_or("the request has no object")?;
    let usage = usage_of(kind, obj).map_err(|e| e.to_string())?;
    let previous = match &req.old_object {
        Some(old) if req.operation == Operation::Update => usage_of(kind, old).map_err(|e| e.to_string())?,
        _ => Amounts::new(),
    };
    Ok(Request {
        uid: obj.metadata.uid.clone().unwrap_or_else(|| format!("{}/{}", namespace, req.name)),
        kind,
        namespace: namespace.to_owned(),
        name: obj.metadata.name.clone().unwrap_or_else(|| req.name.clone()),
        usage,
        previous,
    })
}

fn message(tenancy: &str, namespace: &str, kind: Kind, refusal: &Refusal) -> String {
    format!("{} in namespace {namespace:?} of tenancy {tenancy:?} {refusal}", kind.as_str())
}

fn refuse(response: AdmissionResponse, code: u16, reason: &str, message: &str) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result = Status::failure(message, reason).with_code(code);
    response
}

async fn handle(
    State(admission): State<Arc<Admission>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let response = match review.try_into() {
        Ok(req) => {
            let req: AdmissionRequest<DynamicObject> = req;
            admission.review(&req).await
        }
        Err(_) => AdmissionResponse::invalid("the AdmissionReview has no request"),
    };
    Json(response.into_review())
}

/// Applies the webhook configuration and serves the webhook over TLS until `stop`, taking up a
/// rotated certificate from `cert_dir` as it appears.
pub async fn serve(
    admission: Arc<Admission>,
    listen: std::net::SocketAddr,
    cert_dir: std::path::PathBuf,
    certs: tls::Certificates,
    endpoint: registration::Endpoint,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let serving = Arc::new(tls::Serving::new(&certs)?);
    let listener = tls::bind(listen).await?;
    // Listening before registering, so the apiserver never calls a webhook that is not there.
    registration::install(&admission.client, &endpoint, &certs.ca_pem).await?;
    let rotation = {
        let (admission, serving) = (admission.clone(), serving.clone());
        async move {
            let mut ticker = tokio::time::interval(tls::RELOAD_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut current = certs;
            let mut refused: Option<String> = None;
            loop {
                ticker.tick().await;
                if !current.changed_in(&cert_dir) {
                    continue;
                }
                match rotate(&admission.client, &endpoint, &serving, &current, &cert_dir).await {
                    Ok(next) => {
                        admission.metrics.certificates.with_label_values(&["reloaded"]).inc();
                        tracing::info!(dir = %cert_dir.display(), "serving the rotated webhook certificate");
                        current = next;
                        refused = None;
                    }
                    Err(e) => {
                        admission.metrics.certificates.with_label_values(&["refused"]).inc();
                        // Once per distinct problem: a half-written set is normal for a moment.
                        let why = e.to_string();
                        if refused.as_ref() != Some(&why) {
                            tracing::warn!(dir = %cert_dir.display(), error = %why, "keeping the current webhook certificate");
                            refused = Some(why);
                        }
                    }
                }
            }
        }
    };
    let rotation = tokio::spawn(rotation);
    let served = tls::serve(listener, serving, admission.router(), crate::run::stopped(stop)).await;
    rotation.abort();
    served
}

/// How long the apiserver is given to take up a new `caBundle` before the certificate it must
/// verify is served.
const CA_TAKES_EFFECT: Duration = Duration::from_secs(2);

/// Takes up the certificate files in `dir`. When their CA changed, the apiserver is first told
/// to trust it alongside the previous CA (which signed what is served until now), the new
/// certificate is served once that has taken effect, and then the previous CA is dropped.
async fn rotate(
    client: &kube::Client,
    endpoint: &registration::Endpoint,
    serving: &tls::Serving,
    current: &tls::Certificates,
    dir: &std::path::Path,
) -> Result<tls::Certificates> {
    let next = tls::load(dir)?;
    if next.ca_pem != current.ca_pem {
        let mut bundle = next.ca_pem.clone();
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(&current.ca_pem);
        registration::install(client, endpoint, &bundle).await?;
        tokio::time::sleep(CA_TAKES_EFFECT).await;
        serving.swap(&next)?;
        registration::install(client, endpoint, &next.ca_pem).await?;
    } else {
        serving.swap(&next)?;
    }
    Ok(next)
}

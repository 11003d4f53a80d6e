//! The TenancyRequest controller: an organisation's request for a tenancy is decided (by the
//! auto-approval policy, or by a platform admin), an approved one becomes a Tenancy, and the
//! request's status follows that Tenancy to Ready; an approved quota change is applied to its
//! Tenancy once. Decisions are final, as a CertificateSigningRequest's are.

pub mod desired;
pub mod policy;
pub mod quota;
pub mod reconcile;

#[cfg(test)]
pub mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use crate::events::Recorder;
use commons_crds::tenancy::Tenancy;
use commons_crds::tenancy_request::TenancyRequest;
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use crate::metrics::Metrics;

/// The rule that approves a tenancy at once, and why: only for an organisation the platform knows
/// (by id, sector and name) and a rule of `policy` that holds. The controller decides with it, and
/// the API asks it whether a new request's answer should wait for that decision.
pub fn auto_approval(
    policy: &policy::Policy,
    spec: &commons_crds::TenancySpec,
    tenancies: &[Arc<Tenancy>],
    now: jiff::Timestamp,
) -> Option<(String, String)> {
    if desired::organisation_known(spec, tenancies) { policy.approves(spec, now) } else { None }
}

/// What the auto-approval policy says of a tenancy asked for: the rule that approves it, or why
/// none does (shown to the platform team deciding it).
pub fn policy_view(
    policy: &policy::Policy,
    spec: &commons_crds::TenancySpec,
    tenancies: &[Arc<Tenancy>],
    now: jiff::Timestamp,
) -> (Option<String>, Vec<String>) {
    if !desired::organisation_known(spec, tenancies) {
        let why = "no tenancy of this organisation exists with this id, sector and name: a person checks a new organisation";
        return (None, vec![why.to_owned()]);
    }
    match policy.approves(spec, now) {
        Some((rule, _)) => (Some(rule), Vec::new()),
        None => (None, policy.refusals(spec, now)),
    }
}

/// What every reconcile can reach.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Every Tenancy (the shared store).
    pub tenancies: Store<Tenancy>,
    /// The auto-approval policy.
    pub policy: policy::Policy,
    /// The namespace the API keeps requests in; requests anywhere else are not acted on.
    pub namespace: String,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// How often an unchanged request is reconciled again.
    pub resync: Duration,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// What the controller follows, taken from the shared reflectors before they start.
pub struct Inputs {
    requests: Store<TenancyRequest>,
    context: Context,
    changed: BoxStream<'static, Arc<TenancyRequest>>,
    concerned: BoxStream<'static, ObjectRef<TenancyRequest>>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs").field("requests", &self.requests.len()).finish_non_exhaustive()
    }
}

/// A request's spec, deletion, or decision (written through the status) changed.
fn spec_or_decision(req: &TenancyRequest) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::watch::spec_changed(req).hash(&mut h);
    serde_json::to_string(&desired::decision(req)).unwrap_or_default().hash(&mut h);
    Some(h.finish())
}

/// A Tenancy's readiness, for the requests that follow it.
fn readiness(t: &Tenancy) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let ready = t.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    (&t.metadata.uid, ready.map(|c| (&c.status, &c.message)), t.annotations().get(desired::FROM_REQUEST))
        .hash(&mut h);
    Some(h.finish())
}

impl Inputs {
    /// Subscribes to the shared reflectors.
    pub fn subscribe(
        shared: &mut crate::reflectors::Shared,
        client: Client,
        recorder: Recorder,
        metrics: Metrics,
        (resync, policy, namespace): (Duration, policy::Policy, String),
    ) -> Inputs {
        let requests = shared.requests.store();
        // A Tenancy's readiness concerns the requests for its name.
        let for_name = {
            let requests = requests.clone();
            move |t: Arc<Tenancy>| {
                let name = t.name_any();
                let found: Vec<ObjectRef<TenancyRequest>> = requests
                    .state()
                    .iter()
                    .filter(|r| r.spec.tenancy_name == name)
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect();
                futures::stream::iter(found)
            }
        };
        let concerned = shared.tenancies.subscribe_when(readiness).flat_map(for_name).boxed();
        let changed = shared.requests.subscribe_when(spec_or_decision).boxed();
        let context = Context {
            client,
            tenancies: shared.tenancies.store(),
            policy,
            namespace,
            recorder,
            metrics,
            resync,
        };
        Inputs { requests, context, changed, concerned }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(inputs: Inputs, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let Inputs { requests, context, changed, concerned } = inputs;
    let triggers = crate::drive::Triggers { changed, concerned, all: None };
    crate::drive::run(
        requests,
        triggers,
        reconcile::reconcile,
        reconcile::error_policy,
        Arc::new(context),
        shutdown,
    )
    .await;
}

//! Reconciling one Subscription: consent → the path out, or the instance → status → Events.

use std::sync::Arc;

use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::{Subscription, SubscriptionMode, SubscriptionPhase, SubscriptionStatus};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::Context;
use super::consent::{self, Reason, Verdict};
use super::desired;
use crate::apply::{create_or_apply, delete};
use crate::conditions::{carry_transition_times, condition};
use crate::error::{Error, Result};
use crate::events::Reason as EventReason;

/// What the reconcile found and did.
#[derive(Debug)]
struct Outcome {
    verdict: Verdict,
    endpoint: Option<String>,
    service_ready: Option<bool>,
    instance: Option<String>,
}

fn endpoint(hs: &HostedService) -> Option<String> {
    (!hs.spec.ports.is_empty()).then(|| crate::hosted::desired::endpoint(hs))
}

/// Reconciles one Subscription.
pub async fn reconcile(sub: Arc<Subscription>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_duration.with_label_values(&["subscription"]).start_timer();
    if sub.metadata.deletion_timestamp.is_some() {
        // What it made goes with it (owner references); the provider closes its side.
        ctx.written.forget(sub.as_ref());
        return Ok(Action::await_change());
    }
    crate::watch::synced(&[&ctx.lookup.tenancies, &ctx.lookup.namespaces, &ctx.lookup.hosted, &ctx.policies])
        .await?;
    let own = ctx.lookup.namespaces.get(&ObjectRef::new(&sub.namespace().unwrap_or_default()));
    if own.is_some_and(|n| n.metadata.deletion_timestamp.is_some()) {
        // Going with its namespace: nothing may be created there any more.
        return Ok(Action::await_change());
    }
    let parties = ctx.lookup.parties(&sub);
    let verdict = consent::decide(&sub, &parties);
    let before = sub.status.as_ref().and_then(|s| s.phase);
    let ever_active = sub.status.as_ref().is_some_and(|s| s.active_since.is_some());
    let outcome = match sub.spec.mode {
        SubscriptionMode::Shared => {
            shared(&ctx, &sub, verdict, before, ever_active, parties.service.as_deref()).await?
        }
        SubscriptionMode::Instance => instance(&ctx, &sub, verdict, &parties).await?,
    };
    let status = build(&sub, &outcome, jiff::Timestamp::now());
    if ctx.written.already(sub.as_ref(), &status) {
        // Written and announced from this very version; the store has not caught up yet.
        return Ok(Action::requeue(ctx.resync));
    }
    announce(&ctx, &sub, &status).await;
    if sub.status.as_ref() != Some(&status) {
        let api = Api::<Subscription>::namespaced(ctx.client.clone(), &sub.namespace().unwrap_or_default());
        crate::apply::write_status(&api, &sub.name_any(), sub.status.as_ref(), &status).await?;
        ctx.written.wrote(sub.as_ref(), &status);
    }
    Ok(Action::requeue(ctx.resync))
}

/// Shared use: the path out of the consumer's namespace is open exactly while Active.
async fn shared(
    ctx: &Context,
    sub: &Subscription,
    verdict: Verdict,
    before: Option<SubscriptionPhase>,
    ever_active: bool,
    service: Option<&HostedService>,
) -> Result<Outcome> {
    let ns = sub.namespace().unwrap_or_default();
    let uid = sub.uid().unwrap_or_default();
    let api = Api::<NetworkPolicy>::namespaced(ctx.client.clone(), &ns);
    let name = desired::egress_policy_name(sub);
    let observed = ctx.policies.get(&ObjectRef::new(&name).within(&ns));
    let active = consent::phase(&verdict, before, ever_active) == SubscriptionPhase::Active;
    match (active, service.and_then(|hs| desired::egress_policy(sub, hs))) {
        (true, Some(policy)) => {
            create_or_apply(&api, &policy, observed.as_deref(), &uid).await?;
        }
        _ => {
            if observed.is_some_and(|p| p.owner_references().iter().any(|o| o.uid == uid)) {
                delete(&api, &name).await?;
            }
        }
    }
    Ok(Outcome {
        endpoint: service.filter(|_| active).and_then(endpoint),
        service_ready: service.filter(|_| active).map(crate::hosted::status::is_ready),
        instance: None,
        verdict,
    })
}

/// An instance: the consumer's own HostedService, made once from the published one. From then on
/// it is the consumer's: the provider's later changes (a new image, say) never reach it, since that
/// would run the provider's new code inside the consumer's tenancy without the consumer's consent;
/// and if the original is unpublished or deleted, the copy keeps running.
async fn instance(
    ctx: &Context,
    sub: &Subscription,
    verdict: Verdict,
    parties: &consent::Parties,
) -> Result<Outcome> {
    let ns = sub.namespace().unwrap_or_default();
    let uid = sub.uid().unwrap_or_default();
    let existing = ctx
        .lookup
        .hosted
        .get(&ObjectRef::new(&sub.name_any()).within(&ns))
        .filter(|hs| hs.owner_references().iter().any(|o| o.uid == uid && o.controller == Some(true)));
    let verdict = match (verdict, parties.service.as_ref(), parties.consumer.as_ref(), existing.as_ref()) {
        (_, _, _, Some(_)) => Verdict::Active,
        (Verdict::Active, Some(published), Some(consumer), None) => {
            let copy = desired::instance(sub, published, consumer);
            let api = Api::<HostedService>::namespaced(ctx.client.clone(), &ns);
            match create_or_apply(&api, &copy, None::<&HostedService>, &uid).await {
                Ok(_) => Verdict::Active,
                Err(Error::Taken { kind, namespace, name }) => Verdict::Not(
                    Reason::NameTaken,
                    format!(
                        "{kind} {namespace}/{name} exists and is not this subscription's; rename the Subscription"
                    ),
                ),
                Err(e) => return Err(e),
            }
        }
        (v, _, _, None) => v,
    };
    let active = verdict == Verdict::Active;
    Ok(Outcome {
        endpoint: existing.as_deref().filter(|_| active).and_then(endpoint),
        service_ready: existing.as_deref().filter(|_| active).map(crate::hosted::status::is_ready),
        instance: active.then(|| sub.name_any()),
        verdict,
    })
}

/// The status from the outcome; `now` stamps a transition into or out of Active.
fn build(sub: &Subscription, o: &Outcome, now: jiff::Timestamp) -> SubscriptionStatus {
    let previous = sub.status.clone().unwrap_or_default();
    let phase = consent::phase(&o.verdict, previous.phase, previous.active_since.is_some());
    let was_active = previous.phase == Some(SubscriptionPhase::Active);
    let active = phase == SubscriptionPhase::Active;
    let target = format!("{}/{}", sub.spec.service.namespace, sub.spec.service.name);
    let (reason, message) = match (&o.verdict, phase) {
        (_, SubscriptionPhase::Ended) => (
            Some("Ended".to_owned()),
            previous
                .message
                .clone()
                .filter(|_| previous.phase == Some(SubscriptionPhase::Ended))
                .unwrap_or_else(|| format!("the provider stopped serving this subscription to {target}; make a new one to use it again")),
        ),
        (Verdict::Active, _) => (
            None,
            match &o.instance {
                Some(name) => format!("runs its own instance {name} of {target}"),
                None => format!("uses {target}"),
            },
        ),
        (Verdict::Not(r, m), _) => (Some(r.as_str().to_owned()), m.clone()),
    };
    let generation = sub.metadata.generation;
    let ready = active && o.service_ready == Some(true);
    let mut conditions = vec![condition(
        "Ready",
        ready,
        if ready { "ServiceReady" } else { reason.as_deref().unwrap_or("ServiceNotReady") },
        if ready {
            message.clone()
        } else if active {
            "the service is not ready yet".to_owned()
        } else {
            message.clone()
        },
        generation,
    )];
    carry_transition_times(&mut conditions, &previous.conditions);
    SubscriptionStatus {
        observed_generation: generation,
        phase: Some(phase),
        reason,
        message: Some(message),
        endpoint: if active { o.endpoint.clone() } else { None },
        active_since: match (active, was_active) {
            (true, true) => previous.active_since.clone(),
            (true, false) => Some(Time(now)),
            (false, _) => previous.active_since.clone(),
        },
        ended_at: match (active, was_active) {
            (true, _) => None,
            (false, true) => Some(Time(now)),
            (false, false) => previous.ended_at.clone(),
        },
        service_ready: o.service_ready,
        instance: o.instance.clone(),
        conditions,
    }
}

/// Events on the subscription for each change of phase, with the time in the note (metering
/// bills from these transitions; the status keeps activeSince and endedAt).
async fn announce(ctx: &Context, sub: &Subscription, now: &SubscriptionStatus) {
    let before = sub.status.as_ref().and_then(|s| s.phase);
    if before == now.phase {
        return;
    }
    let target = format!("{}/{}", sub.spec.service.namespace, sub.spec.service.name);
    let at = |t: &Option<Time>| t.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
    let (reason, note) = match now.phase {
        Some(SubscriptionPhase::Active) => (
            EventReason::SubscriptionActive,
            format!("active from {}: {}", at(&now.active_since), now.message.clone().unwrap_or_default()),
        ),
        Some(SubscriptionPhase::Ended) => {
            (EventReason::SubscriptionEnded, format!("ended at {}: {target}", at(&now.ended_at)))
        }
        Some(SubscriptionPhase::Refused) => (
            EventReason::SubscriptionRefused,
            format!(
                "{}: {}",
                now.reason.clone().unwrap_or_default(),
                now.message.clone().unwrap_or_default()
            ),
        ),
        Some(SubscriptionPhase::Pending) | None => (
            EventReason::SubscriptionPending,
            match before {
                Some(SubscriptionPhase::Active) => {
                    format!("paused at {}: {}", at(&now.ended_at), now.message.clone().unwrap_or_default())
                }
                _ => format!(
                    "{}: {}",
                    now.reason.clone().unwrap_or_default(),
                    now.message.clone().unwrap_or_default()
                ),
            },
        ),
    };
    crate::events::publish(&ctx.recorder, sub, reason, "Consent", note).await;
}

/// The Event on a subscription its consumer deleted while it was Active.
pub async fn announce_deleted(recorder: &crate::events::Recorder, sub: &Subscription) {
    let note = format!(
        "ended at {}: deleted by its tenancy; the path to {}/{} is closed",
        jiff::Timestamp::now(),
        sub.spec.service.namespace,
        sub.spec.service.name
    );
    crate::events::publish(recorder, sub, EventReason::SubscriptionEnded, "Consent", note).await;
}

/// What happens after a failed reconcile: count it and try again soon.
pub fn error_policy(sub: Arc<Subscription>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::error::retry_after_failure("subscription", &sub.name_any(), error, &ctx.metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::fixtures::subscription;

    fn outcome(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            endpoint: Some("payroll.north-hr.svc.cluster.local".into()),
            service_ready: Some(true),
            instance: None,
        }
    }

    #[test]
    fn activation_and_ending_are_stamped_once() {
        let t0 = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let t1 = jiff::Timestamp::from_second(1_800_000_600).unwrap();
        let mut sub = subscription("payroll", "south-apps", "north-hr", "payroll").build();
        let active = build(&sub, &outcome(Verdict::Active), t0);
        assert_eq!(active.phase, Some(SubscriptionPhase::Active));
        assert_eq!(active.active_since, Some(Time(t0)));
        assert_eq!(active.endpoint.as_deref(), Some("payroll.north-hr.svc.cluster.local"));
        sub.status = Some(active.clone());
        assert_eq!(
            build(&sub, &outcome(Verdict::Active), t1),
            active,
            "a settled subscription's status does not move"
        );
        let dropped = build(&sub, &outcome(Verdict::Not(Reason::NotListed, "dropped".into())), t1);
        assert_eq!(dropped.phase, Some(SubscriptionPhase::Ended));
        assert_eq!(
            (dropped.active_since.clone(), dropped.ended_at.clone()),
            (Some(Time(t0)), Some(Time(t1)))
        );
        assert_eq!(dropped.endpoint.clone(), None, "no endpoint once ended");
        sub.status = Some(dropped.clone());
        assert_eq!(
            build(&sub, &outcome(Verdict::Active), t1).phase,
            Some(SubscriptionPhase::Ended),
            "ended is final"
        );
    }

    #[test]
    fn a_pending_subscription_says_why_and_has_no_endpoint() {
        let sub = subscription("payroll", "south-apps", "north-hr", "payroll").build();
        let s = build(
            &sub,
            &outcome(Verdict::Not(Reason::NotListed, "ask the provider".into())),
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            (s.phase, s.reason.as_deref(), s.endpoint),
            (Some(SubscriptionPhase::Pending), Some("NotListed"), None)
        );
        assert_eq!((s.active_since, s.ended_at), (None, None));
        assert_eq!(s.conditions[0].status, "False");
    }
}

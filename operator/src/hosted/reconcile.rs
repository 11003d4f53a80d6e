//! Reconciling one HostedService: admission → children → status → Events on transitions.

use std::sync::Arc;

use commons_crds::hosted_service::{HostedService, HostedServiceStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Context;
use super::admit::{self, Admission};
use super::desired;
use super::status::{self, Found};
use crate::apply::{create_or_apply, delete};
use crate::error::{Error, Result};
use crate::events::Reason;
use crate::tenancy::status::{Suspension, expiry};

/// Reconciles one HostedService.
pub async fn reconcile(hs: Arc<HostedService>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_duration.with_label_values(&["hostedservice"]).start_timer();
    if hs.metadata.deletion_timestamp.is_some() {
        // Its children go with it (owner references).
        ctx.written.forget(hs.as_ref());
        return Ok(Action::await_change());
    }
    ctx.ready().await?;
    let namespace = hs.namespace().unwrap_or_default();
    let ns = ctx.namespaces.get(&ObjectRef::new(&namespace));
    if ns.as_ref().is_some_and(|n| n.metadata.deletion_timestamp.is_some()) {
        // Going with its namespace: nothing may be created there any more.
        return Ok(Action::await_change());
    }
    let tenancy =
        ns.as_deref().and_then(admit::tenancy_of).and_then(|t| ctx.tenancies.get(&ObjectRef::new(&t)));
    let decision = admit::decide(&hs, ns.as_deref(), tenancy);
    let uid = hs.uid().unwrap_or_default();
    let deployment;
    let found = match &decision {
        Admission::Leaving => return Ok(Action::await_change()),
        Admission::Refused(refusal, message) => {
            remove_children(&ctx, &hs, &uid).await?;
            Found::Refused(*refusal, message.clone())
        }
        Admission::Admitted(t) => {
            let suspended =
                Suspension::of(t, expiry(jiff::Timestamp::now(), t.spec.expires_at.as_ref()).0).is_some();
            let wanted = desired::children(&hs, t, suspended);
            let deployment_written = match write_children(&ctx, &namespace, &uid, &wanted).await {
                Ok(written) => written,
                Err(Error::Taken { kind, namespace, name }) => {
                    // Not running as it must: no consumer's path stays open into it.
                    let policy = crate::subscription::desired::ingress_policy_name(&hs);
                    remove_owned::<NetworkPolicy, _>(&ctx.client, &ctx.policies, &namespace, &policy, &uid)
                        .await?;
                    let message = format!(
                        "{kind} {namespace}/{name} exists and belongs to something else; rename the HostedService or remove the {kind}"
                    );
                    return finish(
                        &ctx,
                        &hs,
                        status::build(&hs, &Found::Refused(admit::Refusal::NameTaken, message)),
                    )
                    .await;
                }
                Err(Error::Kube { context, source: kube::Error::Api(s) }) if s.code == 422 => {
                    // The apiserver will not take what the spec makes: say so, rather than retry
                    // for ever with nothing in the status.
                    let message = format!("{context}: {}", s.message);
                    return finish(
                        &ctx,
                        &hs,
                        status::build(&hs, &Found::Refused(admit::Refusal::Invalid, message)),
                    )
                    .await;
                }
                Err(e) => return Err(e),
            };
            deployment = ctx.deployments.get(&key(&namespace, &hs.name_any()));
            Found::Running { deployment: deployment.as_deref(), deployment_written, suspended }
        }
    };
    let mut status = status::build(&hs, &found);
    if matches!(found, Found::Running { .. }) {
        status.consumers = open_to_consumers(&ctx, &hs, &uid).await?;
    }
    finish(&ctx, &hs, status).await
}

/// Opens the path into the service's pods from the namespaces of its active subscriptions (and
/// closes it to any other), and returns the consumers for the status.
async fn open_to_consumers(
    ctx: &Context,
    hs: &HostedService,
    uid: &str,
) -> Result<Vec<commons_crds::hosted_service::ConsumerStatus>> {
    let namespace = hs.namespace().unwrap_or_default();
    let naming = ctx.subscriptions.in_group(&format!("{namespace}/{}", hs.name_any()));
    let consumers = super::consumers::of(hs, &naming, |sub| {
        let parties = ctx.lookup.parties(sub);
        (parties.consumer.as_ref().map(|t| t.name_any()), crate::subscription::consent::decide(sub, &parties))
    });
    let name = crate::subscription::desired::ingress_policy_name(hs);
    match crate::subscription::desired::ingress_policy(hs, &consumers.namespaces) {
        Some(p) => {
            ensure(&ctx.client, &ctx.policies, &namespace, uid, &p).await?;
        }
        None => remove_owned::<NetworkPolicy, _>(&ctx.client, &ctx.policies, &namespace, &name, uid).await?,
    }
    Ok(consumers.statuses)
}

async fn finish(ctx: &Context, hs: &HostedService, status: HostedServiceStatus) -> Result<Action> {
    if ctx.written.already(hs, &status) {
        // Written and announced from this very version; the store has not caught up yet.
        return Ok(Action::requeue(ctx.resync));
    }
    announce(ctx, hs, &status).await;
    if hs.status.as_ref() != Some(&status) {
        let api = Api::<HostedService>::namespaced(ctx.client.clone(), &hs.namespace().unwrap_or_default());
        crate::apply::write_status(&api, &hs.name_any(), hs.status.as_ref(), &status).await?;
        ctx.written.wrote(hs, &status);
    }
    Ok(Action::requeue(ctx.resync))
}

fn key<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> ObjectRef<K> {
    ObjectRef::new(name).within(namespace)
}

/// Writes what differs, the ServiceAccount first (the pods run as it). Returns whether the
/// Deployment was written (the stored one is then older than what was just asked of it).
async fn write_children(ctx: &Context, namespace: &str, uid: &str, c: &desired::Children) -> Result<bool> {
    let name = c.deployment.name_any();
    ensure(&ctx.client, &ctx.service_accounts, namespace, uid, &c.service_account).await?;
    let deployment_written = ensure(&ctx.client, &ctx.deployments, namespace, uid, &c.deployment).await?;
    match &c.service {
        Some(s) => {
            ensure(&ctx.client, &ctx.services, namespace, uid, s).await?;
        }
        None => remove_owned::<Service, _>(&ctx.client, &ctx.services, namespace, &name, uid).await?,
    }
    match &c.disruption_budget {
        Some(p) => {
            ensure(&ctx.client, &ctx.disruption_budgets, namespace, uid, p).await?;
        }
        None => {
            remove_owned::<PodDisruptionBudget, _>(
                &ctx.client,
                &ctx.disruption_budgets,
                namespace,
                &name,
                uid,
            )
            .await?
        }
    }
    Ok(deployment_written)
}

/// Creates or applies `desired` unless the store shows it as it is; returns whether it wrote.
async fn ensure<K, S>(
    client: &kube::Client,
    store: &Store<S>,
    namespace: &str,
    uid: &str,
    desired: &K,
) -> Result<bool>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
    S: Resource<DynamicType = ()> + Clone + Serialize + 'static,
{
    let observed = store.get(&key(namespace, &desired.name_any()));
    let api = Api::<K>::namespaced(client.clone(), namespace);
    create_or_apply(&api, desired, observed.as_deref(), uid).await
}

/// Deletes the child `name` of kind `K` if the store shows it controlled by `uid`.
async fn remove_owned<K, S>(
    client: &kube::Client,
    store: &Store<S>,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Resource<DynamicType = ()> + Clone + 'static,
{
    let owned = store
        .get(&key(namespace, name))
        .is_some_and(|o| o.owner_references().iter().any(|r| r.controller == Some(true) && r.uid == uid));
    if owned {
        delete(&Api::<K>::namespaced(client.clone(), namespace), name).await?;
    }
    Ok(())
}

/// A refused service runs nothing: whatever it had is removed.
async fn remove_children(ctx: &Context, hs: &HostedService, uid: &str) -> Result<()> {
    let (ns, name) = (hs.namespace().unwrap_or_default(), hs.name_any());
    remove_owned::<Deployment, _>(&ctx.client, &ctx.deployments, &ns, &name, uid).await?;
    remove_owned::<Service, _>(&ctx.client, &ctx.services, &ns, &name, uid).await?;
    remove_owned::<PodDisruptionBudget, _>(&ctx.client, &ctx.disruption_budgets, &ns, &name, uid).await?;
    let policy = crate::subscription::desired::ingress_policy_name(hs);
    remove_owned::<NetworkPolicy, _>(&ctx.client, &ctx.policies, &ns, &policy, uid).await?;
    remove_owned::<ServiceAccount, _>(&ctx.client, &ctx.service_accounts, &ns, &name, uid).await
}

/// Events for the transitions a person acts on: admitted or refused, pods refused, scaled for
/// suspension.
async fn announce(ctx: &Context, hs: &HostedService, now: &HostedServiceStatus) {
    let reason_of = |s: Option<&HostedServiceStatus>, t: &str| {
        s.and_then(|s| s.conditions.iter().find(|c| c.type_ == t))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let before = hs.status.as_ref();
    let (admitted_then, admitted_now) =
        (reason_of(before, status::ADMITTED), reason_of(Some(now), status::ADMITTED));
    if let Some((state, reason, message)) =
        admitted_now.filter(|n| admitted_then.as_ref().map(|t| (&t.0, &t.1)) != Some((&n.0, &n.1)))
    {
        let (r, note) = match state.as_str() {
            "True" => (Reason::ServiceAdmitted, "the service runs in its tenancy".to_owned()),
            _ => (Reason::ServiceRefused, format!("{reason}: {message}")),
        };
        crate::events::publish(&ctx.recorder, hs, r, "Admission", note).await;
    }
    let active = |s: Option<&HostedServiceStatus>| -> std::collections::BTreeSet<String> {
        s.map(|s| s.consumers.iter().filter(|c| c.admitted).map(|c| c.tenancy.clone()).collect())
            .unwrap_or_default()
    };
    let (active_then, active_now) = (active(before), active(Some(now)));
    let at = jiff::Timestamp::now();
    for t in active_now.difference(&active_then) {
        let note = format!(
            "tenancy {t} uses the service from {at}: its subscription is active and the path is open"
        );
        crate::events::publish(&ctx.recorder, hs, Reason::ConsumerActivated, "Sharing", note).await;
    }
    for t in active_then.difference(&active_now) {
        let note = format!("tenancy {t} stopped using the service at {at}: the path is closed");
        crate::events::publish(&ctx.recorder, hs, Reason::ConsumerEnded, "Sharing", note).await;
    }
    let (ready_then, ready_now) = (reason_of(before, status::READY), reason_of(Some(now), status::READY));
    if let Some((_, reason, message)) = ready_now.filter(|n| ready_then.as_ref().map(|t| &t.1) != Some(&n.1))
    {
        let event = match reason.as_str() {
            "QuotaExceeded" => Some((Reason::ServiceQuotaExceeded, message)),
            "PodsRefused" => Some((Reason::ServicePodsRefused, message)),
            "TenancySuspended" => {
                Some((Reason::ServiceScaledDown, "the tenancy is suspended: scaled to zero".to_owned()))
            }
            _ if ready_then.as_ref().is_some_and(|t| t.1 == "TenancySuspended") => Some((
                Reason::ServiceScaledUp,
                format!("the tenancy is active again: back to {} replicas", hs.spec.replicas),
            )),
            _ => None,
        };
        if let Some((r, note)) = event {
            crate::events::publish(&ctx.recorder, hs, r, "Reconcile", note).await;
        }
    }
}

/// What happens after a failed reconcile: count it and try again soon.
pub fn error_policy(hs: Arc<HostedService>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::error::retry_after_failure("hostedservice", &hs.name_any(), error, &ctx.metrics)
}

//! Reconciling one TenancyRequest (a quota change goes on in `quota`): the policy decides an undecided request if a rule approves it →
//! an approved request's Tenancy is made once → the status follows it to Ready → Events on each
//! transition. A decision, once written (by the policy here, or by a platform admin through the
//! API or `kubectl`), is never changed: the CRD's rules refuse it.

use std::sync::Arc;

use commons_crds::tenancy::Tenancy;
use commons_crds::tenancy_request::{Outcome, TenancyRequest};
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::Context;
use super::desired::{self, Provisioning};
use crate::error::{Error, Result};
use crate::events::{Reason, publish};

/// Reconciles one request.
pub async fn reconcile(req: Arc<TenancyRequest>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_duration.with_label_values(&["tenancyrequest"]).start_timer();
    if req.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = req.namespace().unwrap_or_default();
    if ns != ctx.namespace {
        // Only the API's namespace holds requests (anyone able to write a TenancyRequest elsewhere
        // does not thereby get a Tenancy made).
        return Ok(Action::await_change());
    }
    crate::watch::synced(&[&ctx.tenancies]).await?;
    let api = Api::<TenancyRequest>::namespaced(ctx.client.clone(), &ns);
    let Some(spec) = req.spec.tenancy.clone() else {
        return super::quota::reconcile(req, ctx, api).await;
    };
    let mut decision = desired::decision(&req).cloned();
    if decision.is_none()
        && first_look(&req)
        && let Some((rule, why)) =
            super::auto_approval(&ctx.policy, &spec, &ctx.tenancies.state(), jiff::Timestamp::now())
    {
        decision = Some(decide_by_policy(&api, &req, &rule, &why, &ctx).await?);
    }
    let observed = ctx.tenancies.get(&ObjectRef::new(&req.spec.tenancy_name));
    let mut provisioning = provisioning_of(&req, decision.as_ref(), observed.as_deref());
    if provisioning == Provisioning::Missing {
        let made = desired::tenancy(&req, &spec);
        crate::apply::count_write("Tenancy", "create");
        match Api::<Tenancy>::all(ctx.client.clone()).create(&PostParams::default(), &made).await {
            Ok(_) => {
                publish(
                    &ctx.recorder,
                    req.as_ref(),
                    Reason::TenancyCreated,
                    "Provision",
                    format!("created the Tenancy {}", req.spec.tenancy_name),
                )
                .await;
                provisioning = Provisioning::Made { ready: false, message: String::new() };
            }
            // Made by an earlier reconcile, or taken: the store will say which.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Ok(Action::requeue(std::time::Duration::from_secs(1)));
            }
            Err(source) => {
                return Err(Error::Kube {
                    context: format!("creating the Tenancy {}", req.spec.tenancy_name),
                    source,
                });
            }
        }
    }
    let status = desired::status(&req, decision.as_ref(), &provisioning);
    let before = req.status.clone().unwrap_or_default();
    if status_changed(&before, &status) {
        if provisioning == Provisioning::Taken && !had(&before, "Provisioned", "NameTaken") {
            publish(
                &ctx.recorder,
                req.as_ref(),
                Reason::TenancyNameTaken,
                "Provision",
                format!("a Tenancy named {} exists that this request did not make", req.spec.tenancy_name),
            )
            .await;
        }
        if matches!(provisioning, Provisioning::Made { ready: true, .. })
            && !had(&before, "Provisioned", "Ready")
        {
            publish(
                &ctx.recorder,
                req.as_ref(),
                Reason::TenancyProvisioned,
                "Provision",
                format!("the Tenancy {} is Ready", req.spec.tenancy_name),
            )
            .await;
        }
        crate::apply::write_status(&api, &req.name_any(), req.status.as_ref(), &status).await?;
    }
    Ok(match provisioning {
        Provisioning::Made { ready: true, .. } | Provisioning::NotApproved | Provisioning::Gone => {
            Action::requeue(ctx.resync)
        }
        _ => Action::requeue(std::time::Duration::from_secs(5)),
    })
}

/// The policy looks at a request once, when it first sees it; after that a person decides.
pub(super) fn first_look(req: &TenancyRequest) -> bool {
    req.status.as_ref().is_none_or(|s| s.conditions.is_empty())
}

/// Writes the decision of the auto-approval rule `rule` on `req`, with an Event.
pub(super) async fn decide_by_policy(
    api: &Api<TenancyRequest>,
    req: &TenancyRequest,
    rule: &str,
    why: &str,
    ctx: &Context,
) -> Result<commons_crds::tenancy_request::Decision> {
    let decided = desired::by_policy(rule, why, jiff::Timestamp::now());
    let mut conditions = desired::decision_conditions(Some(&decided), req.metadata.generation);
    let previous = req.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    crate::conditions::carry_transition_times(&mut conditions, previous);
    let status = commons_crds::tenancy_request::TenancyRequestStatus {
        conditions,
        decision: Some(decided.clone()),
        tenancy: None,
    };
    crate::apply::write_status(api, &req.name_any(), req.status.as_ref(), &status).await?;
    publish(&ctx.recorder, req, Reason::RequestApproved, "Decide", decided.reason.clone()).await;
    Ok(decided)
}

fn provisioning_of(
    req: &TenancyRequest,
    decision: Option<&commons_crds::tenancy_request::Decision>,
    observed: Option<&Tenancy>,
) -> Provisioning {
    // The decision just written is not in `req` yet.
    match decision.map(|d| d.outcome) {
        Some(Outcome::Approved) if desired::decision(req).is_none() => {
            let mut decided = req.clone();
            let status = decided.status.get_or_insert_with(Default::default);
            status.decision = decision.cloned();
            desired::provisioning(&decided, observed)
        }
        _ => desired::provisioning(req, observed),
    }
}

fn had(status: &commons_crds::tenancy_request::TenancyRequestStatus, type_: &str, reason: &str) -> bool {
    status.conditions.iter().any(|c| c.type_ == type_ && c.reason == reason)
}

/// Whether the status differs in anything but condition times.
pub(super) fn status_changed(
    before: &commons_crds::tenancy_request::TenancyRequestStatus,
    after: &commons_crds::tenancy_request::TenancyRequestStatus,
) -> bool {
    let shape = |s: &commons_crds::tenancy_request::TenancyRequestStatus| {
        let conditions: Vec<_> = s
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()))
            .collect();
        (conditions, s.decision.clone(), s.tenancy.clone())
    };
    shape(before) != shape(after)
}

/// Counts a failed reconcile and retries soon.
pub fn error_policy(req: Arc<TenancyRequest>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::error::retry_after_failure("tenancyrequest", &req.name_any(), error, &ctx.metrics)
}

//! Quota change requests: a TenancyRequest with `spec.quota` asks for new limits on the existing
//! Tenancy `spec.tenancyName`. It is decided like a request for a new tenancy (the same
//! auto-approval policy, judging the tenancy as it would be with the new quota, or a platform
//! admin); once approved the limits asked for are merged into the Tenancy's `spec.quota`, once,
//! and the request records that with its `Applied` condition. Pure functions first, then the
//! reconcile.

use std::collections::BTreeMap;
use std::sync::Arc;

use commons_crds::tenancy::{Tenancy, TenancyQuota, TenancySpec};
use commons_crds::tenancy_request::{Decision, Outcome, TenancyRequest, TenancyRequestStatus};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::Context;
use super::desired::{self, key};
use crate::conditions::{carry_transition_times, condition};
use crate::error::{Error, Result};
use crate::events::{Reason, publish};

/// On a Tenancy whose quota a request changed: `<namespace>/<name>` of the last such request.
pub const QUOTA_FROM_REQUEST: &str = commons_crds::labels::QUOTA_CHANGE_REQUEST;

/// Where an approved quota change stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Application {
    /// Not approved: nothing is changed.
    NotApproved,
    /// Approved, and the Tenancy is there to change.
    Due,
    /// Applied (final: a later change of the Tenancy by anyone is not undone).
    Applied,
    /// No Tenancy of that name (deleted since the request was made).
    TenancyMissing,
    /// The Tenancy of that name belongs to another organisation than the request's.
    NotTheOrganisations,
    /// The apiserver refused the new quota; final, with its reason.
    Refused(String),
}

fn applied_condition(
    req: &TenancyRequest,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    req.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Applied")
}

/// Where `req` stands, given its decision and the Tenancy of its name (if any).
pub fn application(
    req: &TenancyRequest,
    decision: Option<&Decision>,
    observed: Option<&Tenancy>,
) -> Application {
    if decision.map(|d| d.outcome) != Some(Outcome::Approved) {
        return Application::NotApproved;
    }
    match applied_condition(req) {
        Some(c) if c.status == "True" => return Application::Applied,
        Some(c) if c.reason == "Refused" => return Application::Refused(c.message.clone()),
        _ => {}
    }
    match observed {
        None => Application::TenancyMissing,
        Some(t) if t.spec.organisation.id != req.spec.requester.organisation => {
            Application::NotTheOrganisations
        }
        // Changed by this request already (its status not written yet when it was).
        Some(t) if t.annotations().get(QUOTA_FROM_REQUEST) == Some(&key(req)) => Application::Applied,
        Some(_) => Application::Due,
    }
}

/// The tenancy as it would be with the quota asked for, when it is the requester organisation's:
/// what the auto-approval policy judges.
pub fn tenancy_after(req: &TenancyRequest, observed: Option<&Tenancy>) -> Option<TenancySpec> {
    let t = observed?;
    if t.spec.organisation.id != req.spec.requester.organisation {
        return None;
    }
    let mut spec = t.spec.clone();
    spec.quota = Some(req.spec.quota_after(t.spec.quota.as_ref())?);
    Some(spec)
}

/// The merge patch that applies the change to `t`: only the limits asked for, marked with the
/// request, and only onto the version of the Tenancy seen (a change meanwhile is a conflict).
pub fn patch(req: &TenancyRequest, t: &Tenancy) -> Value {
    json!({
        "metadata": {
            "resourceVersion": t.resource_version(),
            "annotations": {QUOTA_FROM_REQUEST: key(req)},
        },
        "spec": {"quota": req.spec.quota},
    })
}

/// `cpu 4 → 8, pods (none) → 40`: each limit asked for, from what the Tenancy held.
pub fn describe(asked: &TenancyQuota, before: Option<&TenancyQuota>) -> String {
    let flat = |q: Option<&TenancyQuota>| -> BTreeMap<&'static str, Option<String>> {
        let q = q.cloned().unwrap_or_default();
        BTreeMap::from([
            ("cpu", q.cpu),
            ("memory", q.memory),
            ("storage", q.storage),
            ("pods", q.pods.map(|p| p.to_string())),
            ("loadBalancers", q.load_balancers.map(|p| p.to_string())),
        ])
    };
    let (asked, before) = (flat(Some(asked)), flat(before));
    let mut parts = Vec::new();
    for (field, new) in &asked {
        if let Some(new) = new {
            let old = before.get(field).cloned().flatten().unwrap_or_else(|| "(none)".to_owned());
            parts.push(format!("{field} {old} → {new}"));
        }
    }
    parts.join(", ")
}

/// The request's status: its decision's conditions and, once approved, `Applied`.
pub fn status(
    req: &TenancyRequest,
    decision: Option<&Decision>,
    application: &Application,
) -> TenancyRequestStatus {
    let generation = req.metadata.generation;
    let name = &req.spec.tenancy_name;
    let mut conditions = desired::decision_conditions(decision, generation);
    let applied = match application {
        Application::NotApproved => None,
        Application::Due => Some(condition(
            "Applied",
            false,
            "Applying",
            format!("changing the quota of the Tenancy {name}"),
            generation,
        )),
        Application::Applied => {
            // Kept as first written: it says what the change was.
            let kept = applied_condition(req).filter(|c| c.status == "True").cloned();
            Some(kept.unwrap_or_else(|| {
                let what = req.spec.quota.as_ref().map(|q| describe(q, None)).unwrap_or_default();
                condition(
                    "Applied",
                    true,
                    "Applied",
                    format!("the quota of the Tenancy {name} was changed: {what}"),
                    generation,
                )
            }))
        }
        Application::TenancyMissing => Some(condition(
            "Applied",
            false,
            "TenancyMissing",
            format!("there is no Tenancy {name} to change"),
            generation,
        )),
        Application::NotTheOrganisations => Some(condition(
            "Applied",
            false,
            "NotTheOrganisations",
            format!(
                "the Tenancy {name} is not the organisation {}'s; nothing is changed",
                req.spec.requester.organisation
            ),
            generation,
        )),
        Application::Refused(why) => Some(condition("Applied", false, "Refused", why.clone(), generation)),
    };
    conditions.extend(applied);
    let previous = req.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    carry_transition_times(&mut conditions, previous);
    let tenancy = (*application == Application::Applied).then(|| name.clone());
    TenancyRequestStatus { conditions, decision: decision.cloned(), tenancy }
}

/// Reconciles one quota change request (`req.spec.quota` is set).
pub async fn reconcile(
    req: Arc<TenancyRequest>,
    ctx: Arc<Context>,
    api: Api<TenancyRequest>,
) -> Result<Action> {
    let observed = ctx.tenancies.get(&ObjectRef::new(&req.spec.tenancy_name));
    let mut decision = desired::decision(&req).cloned();
    if decision.is_none()
        && super::reconcile::first_look(&req)
        && let Some(after) = tenancy_after(&req, observed.as_deref())
        && let Some((rule, why)) =
            super::auto_approval(&ctx.policy, &after, &ctx.tenancies.state(), jiff::Timestamp::now())
    {
        decision = Some(super::reconcile::decide_by_policy(&api, &req, &rule, &why, &ctx).await?);
    }
    let mut application = application(&req, decision.as_ref(), observed.as_deref());
    let name = &req.spec.tenancy_name;
    let mut applied_now = None;
    if let (Application::Due, Some(t), Some(asked)) =
        (&application, observed.as_deref(), req.spec.quota.as_ref())
    {
        crate::apply::count_write("Tenancy", "patch");
        let tenancies = Api::<Tenancy>::all(ctx.client.clone());
        match tenancies.patch(name, &PatchParams::default(), &Patch::Merge(patch(&req, t))).await {
            Ok(_) => {
                let what = describe(asked, t.spec.quota.as_ref());
                publish(
                    &ctx.recorder,
                    req.as_ref(),
                    Reason::QuotaChanged,
                    "Apply",
                    format!("the quota of the Tenancy {name} was changed: {what}"),
                )
                .await;
                applied_now = Some(condition(
                    "Applied",
                    true,
                    "Applied",
                    format!("the quota of the Tenancy {name} was changed: {what}"),
                    req.metadata.generation,
                ));
                application = Application::Applied;
            }
            // Changed (or deleted) since the store saw it: look again when it has caught up.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                return Ok(Action::requeue(std::time::Duration::from_secs(1)));
            }
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => {
                application =
                    Application::Refused(format!("the Tenancy {name} refused the new quota: {}", s.message));
            }
            Err(source) => {
                return Err(Error::Kube {
                    context: format!("changing the quota of the Tenancy {name}"),
                    source,
                });
            }
        }
    }
    let mut status = status(&req, decision.as_ref(), &application);
    if let Some(c) = applied_now {
        status.conditions.retain(|k| k.type_ != "Applied");
        status.conditions.push(c);
    }
    let before = req.status.clone().unwrap_or_default();
    if super::reconcile::status_changed(&before, &status) {
        let newly = |reason: &str| {
            status.conditions.iter().any(|c| c.type_ == "Applied" && c.reason == reason)
                && !before.conditions.iter().any(|c| c.type_ == "Applied" && c.reason == reason)
        };
        for reason in ["TenancyMissing", "NotTheOrganisations", "Refused"] {
            if newly(reason) {
                let message = status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Applied")
                    .map(|c| c.message.clone())
                    .unwrap_or_default();
                publish(&ctx.recorder, req.as_ref(), Reason::QuotaChangeNotApplied, "Apply", message).await;
            }
        }
        crate::apply::write_status(&api, &req.name_any(), req.status.as_ref(), &status).await?;
    }
    Ok(match application {
        Application::Due => Action::requeue(std::time::Duration::from_secs(5)),
        _ => Action::requeue(ctx.resync),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::fixtures::{quota_request, tenancy_with};

    fn with_quota(mut t: Tenancy, cpu: &str, pods: Option<i32>) -> Tenancy {
        t.spec.quota = Some(TenancyQuota { cpu: Some(cpu.into()), pods, ..TenancyQuota::default() });
        t
    }

    #[test]
    fn a_change_is_applied_once_to_its_own_organisations_tenancy() {
        let pending = quota_request("q1", "north-a", None);
        let approved = quota_request("q1", "north-a", Some(Outcome::Approved));
        let denied = quota_request("q1", "north-a", Some(Outcome::Denied));
        let ours = tenancy_with("north-a", None, true);
        let mut theirs = ours.clone();
        theirs.spec.organisation.id = "southshire".into();
        let mut marked = ours.clone();
        marked.metadata.annotations =
            Some(BTreeMap::from([(QUOTA_FROM_REQUEST.to_owned(), "requests/q1".to_owned())]));
        let mut done = approved.clone();
        done.status = Some(status(&approved, desired::decision(&approved), &Application::Applied));
        let mut refused = approved.clone();
        refused.status =
            Some(status(&approved, desired::decision(&approved), &Application::Refused("no".into())));
        let table = [
            ("pending", &pending, Some(&ours), Application::NotApproved),
            ("denied", &denied, Some(&ours), Application::NotApproved),
            ("approved", &approved, Some(&ours), Application::Due),
            ("approved, no tenancy", &approved, None, Application::TenancyMissing),
            ("another organisation's", &approved, Some(&theirs), Application::NotTheOrganisations),
            ("patched, status not yet written", &approved, Some(&marked), Application::Applied),
            ("applied stays applied", &done, None, Application::Applied),
            ("refused stays refused", &refused, Some(&ours), Application::Refused("no".into())),
        ];
        for (name, req, observed, want) in table {
            assert_eq!(application(req, desired::decision(req), observed), want, "{name}");
        }
    }

    #[test]
    fn the_limits_asked_for_replace_only_their_own() {
        let req = quota_request("q1", "north-a", None);
        let t = with_quota(tenancy_with("north-a", None, true), "2", Some(20));
        let after = tenancy_after(&req, Some(&t)).unwrap().quota.unwrap();
        // The fixture asks for cpu 8 and memory 16Gi.
        assert_eq!(
            (after.cpu.as_deref(), after.memory.as_deref(), after.pods),
            (Some("8"), Some("16Gi"), Some(20))
        );
        let p = patch(&req, &t);
        assert_eq!(p["spec"]["quota"], json!({"cpu": "8", "memory": "16Gi"}));
        assert_eq!(p["metadata"]["annotations"][QUOTA_FROM_REQUEST], "requests/q1");
        assert_eq!(
            describe(req.spec.quota.as_ref().unwrap(), t.spec.quota.as_ref()),
            "cpu 2 → 8, memory (none) → 16Gi"
        );
        let mut theirs = t.clone();
        theirs.spec.organisation.id = "southshire".into();
        assert!(tenancy_after(&req, Some(&theirs)).is_none(), "never judged against another organisation's");
    }

    #[test]
    fn the_status_says_whether_the_change_was_applied() {
        let approved = quota_request("q1", "north-a", Some(Outcome::Approved));
        let d = desired::decision(&approved).cloned();
        let reasons = |a: &Application| {
            let s = status(&approved, d.as_ref(), a);
            (s.conditions.iter().map(|c| c.reason.clone()).collect::<Vec<_>>(), s.tenancy)
        };
        assert_eq!(reasons(&Application::Due), (vec!["Approved".into(), "Applying".into()], None));
        assert_eq!(
            reasons(&Application::Applied),
            (vec!["Approved".into(), "Applied".into()], Some("north-a".into()))
        );
        assert_eq!(reasons(&Application::TenancyMissing).0[1], "TenancyMissing");
        let pending = quota_request("q1", "north-a", None);
        assert_eq!(
            status(&pending, None, &Application::NotApproved).conditions[0].reason,
            "AwaitingDecision"
        );
    }
}

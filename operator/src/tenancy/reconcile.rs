//! Reconciling one Tenancy: validate → build (pure, in `desired`) → apply what differs → status.

use std::sync::Arc;
use std::time::Duration;

use crate::events::Reason;
use crate::membership::{self, Decision};
use commons_crds::labels;
use commons_crds::tenancy::{MembershipState, NamespaceStatus, SegmentMembership, Tenancy};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};

use super::Context;
use super::desired;
use super::removal::{self, Contents, Removal};
use super::status::{self, Expiry, Observations, Suspension};
use crate::apply::{Wrote, delete, write, write_saying};
use crate::compare::Compare;
use crate::error::{Error, Result};

fn controlled_by<K: Resource>(obj: &K, tenancy: &Tenancy) -> bool {
    let uid = tenancy.uid();
    obj.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

fn lookup<K>(store: &Store<K>, name: &str, namespace: Option<&str>) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut r = ObjectRef::<K>::new(name);
    if let Some(ns) = namespace {
        r = r.within(ns);
    }
    store.get(&r)
}

/// Reconciles one Tenancy.
pub async fn reconcile(tenancy: Arc<Tenancy>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_duration.with_label_values(&["tenancy"]).start_timer();
    if tenancy.metadata.deletion_timestamp.is_some() {
        // Owner references hand everything to the garbage collector; nothing to do here.
        ctx.written.forget(tenancy.as_ref());
        return Ok(Action::await_change());
    }
    tracing::debug!(tenancy = %tenancy.name_any(), "reconciling");
    ctx.stores.ready().await?;
    let name = tenancy.name_any();
    tracing::debug!(tenancy = %name, "stores ready");
    let (stage, next_stage) = status::expiry(jiff::Timestamp::now(), tenancy.spec.expires_at.as_ref());
    let suspended = Suspension::of(&tenancy, stage);
    let limits = desired::quota_limits(&tenancy).map_err(|e| Error::Invalid(format!("spec.quota: {e}")))?;

    // Commons compares what it wants with what is there by what it sets, so a key the spec
    // dropped (a namespace's label, a default) would stay; the first reconcile of a spec no status
    // has described yet writes every child out, and the apply removes what Commons no longer sets.
    // (Not again from the same version once its status is written: the store may lag behind.)
    let observed_generation = tenancy.status.as_ref().and_then(|s| s.observed_generation);
    let described = observed_generation.is_some() && observed_generation == tenancy.metadata.generation;
    let compare =
        if described || ctx.written.wrote_from(tenancy.as_ref()) { Compare::Sets } else { Compare::Always };

    // 1. Namespaces, never taking over one that belongs to something else.
    let client = ctx.client.clone();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let mut statuses = Vec::new();
    let mut ours = Vec::new();
    let mut created = Vec::new();
    for ns in desired::namespaces(&tenancy) {
        let ns_name = ns.name_any();
        let observed = lookup(&ctx.stores.namespaces, &ns_name, None);
        match observed.as_deref() {
            Some(o) if !controlled_by(o, &tenancy) => {
                let owner = o
                    .labels()
                    .get(labels::TENANCY)
                    .map(|t| format!("tenancy {t}"))
                    .unwrap_or_else(|| "something else".into());
                let message = format!(
                    "namespace {ns_name} already exists and belongs to {owner}; Commons will not take it over"
                );
                if was_ready(&tenancy, &ns_name) {
                    ctx.event(&tenancy, Reason::NamespaceConflict, &message).await;
                }
                statuses.push(NamespaceStatus { name: ns_name, ready: false, message: Some(message) });
            }
            Some(o) if o.metadata.deletion_timestamp.is_some() => {
                statuses.push(NamespaceStatus {
                    name: ns_name,
                    ready: false,
                    message: Some("namespace is being deleted; it will be recreated".into()),
                });
            }
            observed => {
                if write_saying(&ns_api, &ns, observed, compare).await? == Wrote::Created {
                    created.push(ns_name.clone());
                }
                statuses.push(NamespaceStatus { name: ns_name.clone(), ready: true, message: None });
                ours.push(ns_name);
            }
        }
    }

    // One Event for every namespace this reconcile made (a new tenancy's, all at once).
    if !created.is_empty() {
        let noun = if created.len() == 1 { "namespace" } else { "namespaces" };
        ctx.event(&tenancy, Reason::NamespaceCreated, &format!("created {noun} {}", created.join(", ")))
            .await;
    }

    // Namespaces still ours that are leaving (removed from the spec, or terminating) keep their
    // usage and share in the tenancy's count until they are gone.
    let leaving: Vec<String> = ctx
        .stores
        .namespaces
        .state()
        .iter()
        .filter(|ns| controlled_by(ns.as_ref(), &tenancy) && !ours.contains(&ns.name_any()))
        .map(|ns| ns.name_any())
        .collect();

    // 2. Quota before anything that lets owners start pods. (In a namespace made just now no
    // ResourceQuota can be there yet.)
    let quota =
        super::shares::apply_quota(&ctx, &tenancy, (&ours, &created), &leaving, &limits, suspended).await?;

    // 3. Defaults, isolation and the owners' access, namespace by namespace.
    for ns in &ours {
        let lr = desired::limit_range(&tenancy, ns);
        write(
            &Api::<LimitRange>::namespaced(client.clone(), ns),
            &lr,
            lookup(&ctx.stores.limit_ranges, desired::LIMIT_RANGE_NAME, Some(ns)).as_deref(),
            compare,
        )
        .await?;
        let np = desired::baseline_policy(&tenancy, ns, &ours);
        write(
            &Api::<NetworkPolicy>::namespaced(client.clone(), ns),
            &np,
            lookup(&ctx.stores.network_policies, desired::BASELINE_POLICY_NAME, Some(ns)).as_deref(),
            compare,
        )
        .await?;
        let rb = desired::owners_binding(&tenancy, ns);
        write(
            &Api::<RoleBinding>::namespaced(client.clone(), ns),
            &rb,
            lookup(&ctx.stores.role_bindings, desired::OWNERS_BINDING_NAME, Some(ns)).as_deref(),
            compare,
        )
        .await?;
    }
    let reader = desired::reader_role(&tenancy);
    write(
        &Api::<ClusterRole>::all(client.clone()),
        &reader,
        lookup(&ctx.stores.cluster_roles, &desired::reader_name(&tenancy), None).as_deref(),
        compare,
    )
    .await?;
    let reader_binding = desired::reader_binding(&tenancy);
    write(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        &reader_binding,
        lookup(&ctx.stores.cluster_role_bindings, &desired::reader_name(&tenancy), None).as_deref(),
        compare,
    )
    .await?;

    // 4. Namespaces dropped from the spec go, unless they still hold claims or pods and their
    // deletion is not confirmed (then they are kept and reported).
    let wanted: Vec<String> =
        tenancy.spec.namespaces.iter().map(|n| desired::namespace_name(&name, &n.name)).collect();
    let mut held = Vec::new();
    for ns in ctx.stores.namespaces.state() {
        if controlled_by(ns.as_ref(), &tenancy)
            && !wanted.contains(&ns.name_any())
            && ns.metadata.deletion_timestamp.is_none()
        {
            let ns_name = ns.name_any();
            match removal::decide(&tenancy, &ns_name, contents(&client, &ns_name).await?) {
                Removal::Delete => {
                    delete(&ns_api, &ns_name).await?;
                    ctx.event(
                        &tenancy,
                        Reason::NamespaceDeleted,
                        &format!("deleted namespace {ns_name} (no longer in spec.namespaces)"),
                    )
                    .await;
                }
                Removal::Hold(why) => {
                    let already = tenancy.status.as_ref().is_some_and(|s| {
                        s.namespaces.iter().any(|n| n.name == ns_name && n.message.as_ref() == Some(&why))
                    });
                    if !already {
                        let note = format!("namespace {ns_name} {why}");
                        ctx.event(&tenancy, Reason::NamespaceDeletionHeld, &note).await;
                    }
                    held.push(NamespaceStatus { name: ns_name, ready: false, message: Some(why) });
                }
            }
        }
    }

    // 5. Status, and the Events a person should see when things change.
    let segments = segment_memberships(&ctx, &tenancy);
    let obs = Observations {
        segments,
        namespaces: statuses,
        quota: quota.status,
        exhausted: quota.exhausted.clone(),
        suspended,
        expiry: (stage != Expiry::None).then_some(stage),
        held,
        budget: budget_of(&ctx, &tenancy),
    };
    announce_changes(&ctx, &tenancy, &obs).await;
    let new_status = status::build(&tenancy, &obs);
    // Asked every time, so a write the store has caught up with is forgotten.
    let repeated = ctx.written.already(tenancy.as_ref(), &new_status);
    if tenancy.status.as_ref() != Some(&new_status) && !repeated {
        let api: Api<Tenancy> = Api::all(client);
        crate::apply::write_status(&api, &name, tenancy.status.as_ref(), &new_status).await?;
        ctx.written.wrote(tenancy.as_ref(), &new_status);
    }
    Ok(match next_stage {
        Some(d) if d < ctx.resync => Action::requeue(d + Duration::from_secs(1)),
        _ => Action::requeue(ctx.resync),
    })
}

/// What a namespace about to be deleted still holds, read live (not from a cache): the decision
/// to delete is not undone.
async fn contents(client: &kube::Client, namespace: &str) -> Result<Contents> {
    let some = kube::api::ListParams::default().limit(500);
    let failed = |what: &str| {
        let context = format!("listing the {what} of namespace {namespace}");
        move |source| Error::Kube { context, source }
    };
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .list_metadata(&some)
        .await
        .map_err(failed("PersistentVolumeClaims"))?;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace).list(&some).await.map_err(failed("pods"))?;
    let running = |p: &&Pod| {
        !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
    };
    Ok(Contents { claims: claims.items.len(), pods: pods.items.iter().filter(running).count() })
}

/// Each segment the tenancy asks to join, with the segment's decision.
fn segment_memberships(ctx: &Context, tenancy: &Tenancy) -> Vec<SegmentMembership> {
    tenancy
        .spec
        .network_segments
        .iter()
        .map(|name| match ctx.stores.segments.get(&ObjectRef::new(name)) {
            None => SegmentMembership {
                name: name.clone(),
                state: MembershipState::Pending,
                reason: Some("SegmentNotFound".into()),
                message: Some(format!("there is no NetworkSegment {name}")),
            },
            Some(seg) => match membership::decide(&seg, tenancy) {
                Decision::Admitted => SegmentMembership {
                    name: name.clone(),
                    state: MembershipState::Joined,
                    reason: None,
                    message: None,
                },
                Decision::Refused { reason, message } => SegmentMembership {
                    name: name.clone(),
                    state: MembershipState::Refused,
                    reason: Some(reason.into()),
                    message: Some(message),
                },
            },
        })
        .collect()
}

fn was_ready(tenancy: &Tenancy, ns: &str) -> bool {
    tenancy.status.as_ref().is_none_or(|s| s.namespaces.iter().find(|n| n.name == ns).is_none_or(|n| n.ready))
}

/// This month's spend against the tenancy's budget. Until the ledger has been measured (just
/// after a start) the status says what it said; after, see `budgets::settled`.
fn budget_of(ctx: &Context, tenancy: &Tenancy) -> Option<crate::metering::budgets::Assessment> {
    let budget = tenancy.spec.budget.as_ref()?;
    let previous = crate::metering::budgets::previous(tenancy.status.as_ref());
    let Some(currency) = ctx.budgets.currency() else {
        return Some(previous.unwrap_or_else(crate::metering::budgets::Assessment::not_measured));
    };
    let period = crate::metering::periods::Month::of(jiff::Timestamp::now()).name;
    let figures = ctx.budgets.of(&tenancy.name_any());
    let now = crate::metering::budgets::assess(budget, figures.as_ref(), &period, Some(&currency));
    Some(crate::metering::budgets::settled(now, previous, budget))
}

async fn announce_changes(ctx: &Context, tenancy: &Tenancy, obs: &Observations) {
    let before = tenancy.status.as_ref();
    // Each alert threshold once a month: those reached now and not already in this month's status.
    if let Some(now) = obs.budget.as_ref().and_then(|b| b.budget.as_ref()) {
        let announced: Vec<i32> = before
            .and_then(|b| b.budget.as_ref())
            .filter(|b| b.period == now.period)
            .map(|b| b.thresholds_reached.clone())
            .unwrap_or_default();
        let amount =
            tenancy.spec.budget.as_ref().map(|b| b.monthly_amount.value().to_string()).unwrap_or_default();
        for t in now.thresholds_reached.iter().filter(|t| !announced.contains(t)) {
            let note = format!(
                "spend this month reached {t}% of the budget: {} of {amount} {} ({} projected by the month's end)",
                now.month_to_date, now.currency, now.projected
            );
            // An action of its own per threshold: Events with the same reason and action are
            // folded into one series, and each threshold is a separate notice.
            let action = format!("Reached{t}PercentOfBudget");
            crate::events::publish(&ctx.recorder, tenancy, Reason::BudgetThresholdReached, &action, note)
                .await;
        }
    }
    let was_exhausted =
        status::find(before, status::types::QUOTA_APPLIED).is_some_and(|c| c.reason == "QuotaExhausted");
    if !obs.exhausted.is_empty() && !was_exhausted {
        ctx.event(
            tenancy,
            Reason::QuotaExhausted,
            &format!("the tenancy has used all of its {}", obs.exhausted.join(", ")),
        )
        .await;
    }
    let was_suspended = status::find(before, status::types::SUSPENDED).map(|c| c.reason.clone());
    let now = obs.suspended.map(|s| s.reason().to_owned());
    if now != was_suspended.clone().filter(|r| r != "Active") {
        match obs.suspended {
            Some(Suspension::Expired) => {
                ctx.event(
                    tenancy,
                    Reason::Expired,
                    "the tenancy passed its expiry date and is suspended; nothing was deleted",
                )
                .await
            }
            Some(Suspension::Suspended) => {
                ctx.event(tenancy, Reason::Suspended, "the tenancy is suspended; nothing new starts").await
            }
            None if was_suspended.is_some_and(|r| r != "Active") => {
                ctx.event(tenancy, Reason::Resumed, "the tenancy is active again").await
            }
            None => {}
        }
    }
    for m in obs.segments.iter().filter(|m| m.state == MembershipState::Refused) {
        let was_refused = before.is_some_and(|b| {
            b.segments.iter().any(|p| p.name == m.name && p.state == MembershipState::Refused)
        });
        if !was_refused {
            let note =
                format!("segment {} refused the tenancy: {}", m.name, m.message.clone().unwrap_or_default());
            ctx.event(tenancy, Reason::SegmentRefused, &note).await;
        }
    }
    if let Some(stage @ (Expiry::Within7Days | Expiry::Within1Day)) = obs.expiry {
        let was = status::find(before, status::types::EXPIRING).map(|c| c.reason.as_str());
        if was != Some(stage.reason()) {
            let at = tenancy.spec.expires_at.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
            let when = if stage == Expiry::Within1Day { "within 1 day" } else { "within 7 days" };
            ctx.event(
                tenancy,
                if stage == Expiry::Within1Day {
                    Reason::ExpiresWithin1Day
                } else {
                    Reason::ExpiresWithin7Days
                },
                &format!("the tenancy expires {when} (at {at}) and will then be suspended"),
            )
            .await;
        }
    }
}

/// What happens after a failed reconcile: count it and try again soon.
pub fn error_policy(tenancy: Arc<Tenancy>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::error::retry_after_failure("tenancy", &tenancy.name_any(), error, &ctx.metrics)
}

impl Context {
    /// Publishes an Event about `tenancy`; failing to publish is logged, never fatal.
    pub async fn event(&self, tenancy: &Tenancy, reason: Reason, note: &str) {
        crate::events::publish(&self.recorder, tenancy, reason, "Reconcile", note.to_owned()).await;
    }
}

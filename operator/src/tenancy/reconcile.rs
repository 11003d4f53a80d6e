//! Reconciling one Tenancy: validate → build (pure, in `desired`) → apply what differs → status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::segment::admission::Decision;
use commons_crds::labels;
use commons_crds::tenancy::{MembershipState, NamespaceStatus, QuotaStatus, SegmentMembership, Tenancy};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};

use super::Context;
use super::desired::{self, QUOTA_NAME};
use super::quota::{self, Amounts, Observed};
use super::status::{self, Expiry, Observations};
use crate::apply::{apply, apply_if_changed, delete};
use crate::error::{Error, Result};
use crate::quantity::{Milli, format_for};

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
        return Ok(Action::await_change());
    }
    tracing::debug!(tenancy = %tenancy.name_any(), "reconciling");
    ctx.stores.ready().await?;
    let name = tenancy.name_any();
    tracing::debug!(tenancy = %name, "stores ready");
    let (stage, next_stage) = status::expiry(jiff::Timestamp::now(), tenancy.spec.expires_at.as_ref());
    let suspended = if stage == Expiry::Expired {
        Some("Expired")
    } else if tenancy.spec.suspended {
        Some("Suspended")
    } else {
        None
    };
    let limits = desired::quota_limits(&tenancy).map_err(|e| Error::Invalid(format!("spec.quota: {e}")))?;

    // 1. Namespaces, never taking over one that belongs to something else.
    let client = ctx.client.clone();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let mut statuses = Vec::new();
    let mut ours = Vec::new();
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
                    ctx.event(&tenancy, EventType::Warning, "NamespaceConflict", &message).await;
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
                if apply_if_changed(&ns_api, &ns, observed).await? && observed.is_none() {
                    ctx.event(
                        &tenancy,
                        EventType::Normal,
                        "NamespaceCreated",
                        &format!("created namespace {ns_name}"),
                    )
                    .await;
                }
                statuses.push(NamespaceStatus { name: ns_name.clone(), ready: true, message: None });
                ours.push(ns_name);
            }
        }
    }

    // 2. Quota before anything that lets owners start pods.
    let quota = apply_quota(&ctx, &tenancy, &ours, &limits, suspended).await?;

    // 3. Defaults, isolation and the owners' access, namespace by namespace.
    for ns in &ours {
        let lr = desired::limit_range(&tenancy, ns);
        apply_if_changed(
            &Api::<LimitRange>::namespaced(client.clone(), ns),
            &lr,
            lookup(&ctx.stores.limit_ranges, desired::LIMIT_RANGE_NAME, Some(ns)).as_deref(),
        )
        .await?;
        let np = desired::baseline_policy(&tenancy, ns, &ours);
        apply_if_changed(
            &Api::<NetworkPolicy>::namespaced(client.clone(), ns),
            &np,
            lookup(&ctx.stores.network_policies, desired::BASELINE_POLICY_NAME, Some(ns)).as_deref(),
        )
        .await?;
        let rb = desired::owners_binding(&tenancy, ns);
        apply_if_changed(
            &Api::<RoleBinding>::namespaced(client.clone(), ns),
            &rb,
            lookup(&ctx.stores.role_bindings, desired::OWNERS_BINDING_NAME, Some(ns)).as_deref(),
        )
        .await?;
    }
    let reader = desired::reader_role(&tenancy);
    apply_if_changed(
        &Api::<ClusterRole>::all(client.clone()),
        &reader,
        lookup(&ctx.stores.cluster_roles, &desired::reader_name(&tenancy), None).as_deref(),
    )
    .await?;
    let reader_binding = desired::reader_binding(&tenancy);
    apply_if_changed(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        &reader_binding,
        lookup(&ctx.stores.cluster_role_bindings, &desired::reader_name(&tenancy), None).as_deref(),
    )
    .await?;

    // 4. Namespaces dropped from the spec go.
    let wanted: Vec<String> =
        tenancy.spec.namespaces.iter().map(|n| desired::namespace_name(&name, &n.name)).collect();
    for ns in ctx.stores.namespaces.state() {
        if controlled_by(ns.as_ref(), &tenancy)
            && !wanted.contains(&ns.name_any())
            && ns.metadata.deletion_timestamp.is_none()
        {
            delete(&ns_api, &ns.name_any()).await?;
            ctx.event(
                &tenancy,
                EventType::Normal,
                "NamespaceDeleted",
                &format!("deleted namespace {} (no longer in spec.namespaces)", ns.name_any()),
            )
            .await;
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
    };
    announce_changes(&ctx, &tenancy, &obs).await;
    let new_status = status::build(&tenancy, &obs);
    if tenancy.status.as_ref() != Some(&new_status) {
        let api: Api<Tenancy> = Api::all(client);
        crate::apply::count_write("Tenancy", "status");
        let patch = crate::apply::status_patch(tenancy.status.as_ref(), &new_status);
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|source| Error::Kube { context: format!("writing status of Tenancy {name}"), source })?;
    }
    Ok(match next_stage {
        Some(d) if d < ctx.resync => Action::requeue(d + Duration::from_secs(1)),
        _ => Action::requeue(ctx.resync),
    })
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
            Some(seg) => match crate::segment::admission::decide(&seg, tenancy) {
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

async fn announce_changes(ctx: &Context, tenancy: &Tenancy, obs: &Observations) {
    let before = tenancy.status.as_ref();
    let was_exhausted =
        status::find(before, status::types::QUOTA_APPLIED).is_some_and(|c| c.reason == "QuotaExhausted");
    if !obs.exhausted.is_empty() && !was_exhausted {
        ctx.event(
            tenancy,
            EventType::Warning,
            "QuotaExhausted",
            &format!("the tenancy has used all of its {}", obs.exhausted.join(", ")),
        )
        .await;
    }
    let was_suspended = status::find(before, status::types::SUSPENDED).map(|c| c.reason.clone());
    if obs.suspended.map(str::to_owned) != was_suspended.clone().filter(|r| r != "Active") {
        match obs.suspended {
            Some("Expired") => {
                ctx.event(
                    tenancy,
                    EventType::Warning,
                    "Expired",
                    "the tenancy passed its expiry date and is suspended; nothing was deleted",
                )
                .await
            }
            Some(_) => {
                ctx.event(
                    tenancy,
                    EventType::Normal,
                    "Suspended",
                    "the tenancy is suspended; nothing new starts",
                )
                .await
            }
            None if was_suspended.is_some_and(|r| r != "Active") => {
                ctx.event(tenancy, EventType::Normal, "Resumed", "the tenancy is active again").await
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
            ctx.event(tenancy, EventType::Warning, "SegmentRefused", &note).await;
        }
    }
    if let Some(stage @ (Expiry::Within7Days | Expiry::Within1Day)) = obs.expiry {
        let was = status::find(before, status::types::EXPIRING).map(|c| c.reason.as_str());
        if was != Some(stage.reason()) {
            let at = tenancy.spec.expires_at.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
            let when = if stage == Expiry::Within1Day { "within 1 day" } else { "within 7 days" };
            ctx.event(
                tenancy,
                EventType::Warning,
                stage.reason(),
                &format!("the tenancy expires {when} (at {at}) and will then be suspended"),
            )
            .await;
        }
    }
}

/// What applying the quota found.
#[derive(Debug, Default)]
struct QuotaOutcome {
    status: Option<QuotaStatus>,
    exhausted: Vec<String>,
}

fn parse_amounts(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Amounts {
    map.map(|m| m.iter().filter_map(|(k, v)| v.0.parse::<Milli>().ok().map(|q| (k.clone(), q))).collect())
        .unwrap_or_default()
}

fn observe(rq: Option<&ResourceQuota>, namespace: &str, wanted: Amounts) -> Observed {
    let Some(rq) = rq else {
        return Observed { namespace: namespace.into(), wanted, ..Observed::default() };
    };
    Observed {
        namespace: namespace.into(),
        hard: Some(parse_amounts(rq.spec.as_ref().and_then(|s| s.hard.as_ref()))),
        used: parse_amounts(rq.status.as_ref().and_then(|s| s.used.as_ref())),
        wanted,
    }
}

/// `observed` with its usage raised to `counted` where that is larger.
fn at_least(mut observed: Observed, counted: Option<&Amounts>) -> Observed {
    for (resource, amount) in counted.into_iter().flatten() {
        let used = observed.used.entry(resource.clone()).or_default();
        *used = (*used).max(*amount);
    }
    observed
}

/// Whether the ResourceQuota already carries `hard` and Commons' labels and owner. Hard values
/// are compared as amounts: the apiserver stores quantities in its own canonical spelling.
fn quota_up_to_date(
    tenancy: &Tenancy,
    observed: Option<&ResourceQuota>,
    namespace: &str,
    hard: &Amounts,
) -> bool {
    let Some(rq) = observed else { return false };
    let desired = desired::resource_quota(tenancy, namespace, hard);
    let meta_ok = crate::apply::is_subset(
        &serde_json::to_value(&desired.metadata).unwrap_or_default(),
        &serde_json::to_value(&rq.metadata).unwrap_or_default(),
    );
    meta_ok && parse_amounts(rq.spec.as_ref().and_then(|s| s.hard.as_ref())) == *hard
}

/// The most a namespace may use without a further raise: `max(used, hard)` per resource.
fn commitment(used: &Amounts, hard: &Amounts) -> Amounts {
    let mut c = hard.clone();
    for (k, u) in used {
        let e = c.entry(k.clone()).or_insert(*u);
        *e = (*e).max(*u);
    }
    c
}

/// Writes each namespace's share of the tenancy's limits, safely: see `quota` and docs/tenancy.md.
async fn apply_quota(
    ctx: &Context,
    tenancy: &Tenancy,
    namespaces: &[String],
    limits: &Amounts,
    suspended: Option<&str>,
) -> Result<QuotaOutcome> {
    let name = tenancy.name_any();
    // A consistent read, not the reflector store: the safety argument needs the latest hard and
    // used values of every namespace.
    let all: Api<ResourceQuota> = Api::all(ctx.client.clone());
    let listed =
        all.list(&ListParams::default().labels(&format!("{}={name}", labels::TENANCY))).await.map_err(
            |source| Error::Kube { context: format!("listing ResourceQuotas of Tenancy {name}"), source },
        )?;
    let found = |ns: &str| {
        listed.items.iter().find(|rq| rq.namespace().as_deref() == Some(ns) && rq.name_any() == QUOTA_NAME)
    };
    // Usage as the webhook counts it too: a ResourceQuota's `used` can lag its namespace's pods
    // for minutes (seen: 2 used with 3 running), and a namespace refused by its share would then
    // never look starved.
    let counted = ctx.demand.webhook_usage(&name);
    let observed: Vec<Observed> = namespaces
        .iter()
        .map(|ns| at_least(observe(found(ns), ns, ctx.demand.wanted(ns)), counted.get(ns)))
        .collect();
    let plan = quota::plan(limits, &observed, suspended.is_some());

    // Phase 1: lower (or create at usage) every share that goes down; learn each commitment. The
    // webhook decides nothing for this tenancy meanwhile, and learns each lowered share first.
    let lock = ctx.demand.tenancy_lock(&name);
    let phase1 = lock.lock().await;
    // Never below what the webhook has already admitted there (some of it may not have reached the
    // ResourceQuota yet, which would then refuse it).
    let admitted = ctx.demand.webhook_usage(&name);
    let mut commitments: BTreeMap<String, Amounts> = BTreeMap::new();
    let mut first: BTreeMap<String, Amounts> = BTreeMap::new();
    for o in &observed {
        let step = quota::lowered(
            &plan[&o.namespace],
            o.hard.as_ref(),
            &o.used,
            admitted.get(&o.namespace).unwrap_or(&Amounts::new()),
        );
        let used = if !quota_up_to_date(tenancy, found(&o.namespace), &o.namespace, &step) {
            let current = o.hard.clone().unwrap_or_default();
            let lower: Amounts = step
                .iter()
                .filter(|(r, v)| current.get(*r).is_some_and(|c| *v < c))
                .map(|(r, v)| (r.clone(), *v))
                .collect();
            if !lower.is_empty() {
                ctx.demand.lowering(&o.namespace, &lower);
            }
            let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &o.namespace);
            let stored = apply(&api, &desired::resource_quota(tenancy, &o.namespace, &step)).await?;
            parse_amounts(stored.status.as_ref().and_then(|s| s.used.as_ref()))
        } else {
            o.used.clone()
        };
        commitments.insert(o.namespace.clone(), commitment(&used, &step));
        first.insert(o.namespace.clone(), step);
    }
    drop(phase1);
    // Phase 2: raise shares that go up, each only as far as every commitment still fits.
    for o in &observed {
        let target = &plan[&o.namespace];
        let step = &first[&o.namespace];
        let mut fin = step.clone();
        for (r, t) in target {
            if let Some(total) = limits.get(r) {
                let ceiling = quota::safe_ceiling(r, *total, &o.namespace, &commitments);
                let s = step.get(r).copied().unwrap_or_default();
                fin.insert(r.clone(), s.max((*t).min(ceiling)));
            }
        }
        // A refusal the new share now meets is no longer demand (else an idle namespace that was
        // refused a minute ago would keep drawing headroom from one that asks now).
        for (r, want) in &o.wanted {
            let used = o.used.get(r).copied().unwrap_or_default();
            if fin.get(r).is_some_and(|h| used + *want <= *h) {
                ctx.demand.satisfied(&o.namespace, r);
            }
        }
        if &fin != step {
            // Until the apiserver's quota admission surely sees the raise, the webhook keeps to
            // the share it raises from.
            let before: Amounts = step
                .iter()
                .filter(|(r, v)| fin.get(*r).is_some_and(|f| f > *v))
                .map(|(r, v)| (r.clone(), *v))
                .collect();
            ctx.demand.raising(&o.namespace, &before);
            let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &o.namespace);
            let stored = apply(&api, &desired::resource_quota(tenancy, &o.namespace, &fin)).await?;
            ctx.demand.raised(&o.namespace);
            let used = parse_amounts(stored.status.as_ref().and_then(|s| s.used.as_ref()));
            commitments.insert(o.namespace.clone(), commitment(&used, &fin));
        }
    }

    if limits.is_empty() {
        return Ok(QuotaOutcome::default());
    }
    let mut used_total = Amounts::new();
    for o in &observed {
        for (r, u) in &o.used {
            if limits.contains_key(r) {
                *used_total.entry(r.clone()).or_default() =
                    used_total.get(r).copied().unwrap_or_default() + *u;
            }
        }
    }
    let exhausted: Vec<String> = limits
        .iter()
        .filter(|(r, l)| used_total.get(*r).copied().unwrap_or_default() >= **l)
        .map(|(r, _)| r.clone())
        .collect();
    Ok(QuotaOutcome {
        status: Some(QuotaStatus {
            hard: limits.iter().map(|(k, v)| (k.clone(), format_for(k, *v))).collect(),
            used: limits
                .keys()
                .map(|k| (k.clone(), format_for(k, used_total.get(k).copied().unwrap_or_default())))
                .collect(),
        }),
        exhausted,
    })
}

/// What happens after a failed reconcile: count it and try again soon.
pub fn error_policy(tenancy: Arc<Tenancy>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(tenancy = %tenancy.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_errors.with_label_values(&["tenancy", error.metric_label()]).inc();
    Action::requeue(Duration::from_secs(5))
}

impl Context {
    /// Publishes an Event about `tenancy`; failing to publish is logged, never fatal.
    pub async fn event(&self, tenancy: &Tenancy, type_: EventType, reason: &str, note: &str) {
        crate::events::publish(&self.recorder, tenancy, type_, reason, "Reconcile", note.to_owned()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::Milli;

    fn pods(n: i64) -> Amounts {
        [("pods".to_owned(), Milli::units(n))].into()
    }

    fn ns(name: &str, hard: i64, used: i64, wanted: i64) -> Observed {
        let wanted = if wanted > 0 { pods(wanted) } else { Amounts::new() };
        Observed { namespace: name.into(), hard: Some(pods(hard)), used: pods(used), wanted }
    }

    /// A ResourceQuota whose `used` lags (2 while 3 pods run) must not hide a namespace that was
    /// refused by its share while the others hold idle headroom.
    #[test]
    fn a_lagging_quota_usage_does_not_hide_a_starved_namespace() {
        let limits = pods(12);
        let lagging = vec![ns("t-a", 3, 0, 0), ns("t-b", 6, 0, 0), ns("t-c", 3, 2, 1)];
        let stuck = quota::plan(&limits, &lagging, false);
        assert_eq!(stuck["t-c"], pods(3), "with the lagging count alone, nothing moves");

        let counted: BTreeMap<String, Amounts> = [("t-c".to_owned(), pods(3))].into();
        let observed: Vec<Observed> =
            lagging.into_iter().map(|o| at_least(o.clone(), counted.get(&o.namespace))).collect();
        assert_eq!(observed[2].used, pods(3));
        assert_eq!(observed[0].used, pods(0), "a namespace the webhook counts nothing in keeps its usage");
        let plan = quota::plan(&limits, &observed, false);
        assert!(plan["t-c"]["pods"] > Milli::units(3), "headroom moves to the refused namespace: {plan:?}");
        assert!(plan.values().map(|a| a["pods"]).sum::<Milli>() <= Milli::units(12));
    }
}

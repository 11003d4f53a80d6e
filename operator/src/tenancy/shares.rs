//! Writing each namespace's share of the tenancy's limits, in two passes that never let the
//! shares add up to more than the limit (see [`super::quota`] for the plan and docs/tenancy.md):
//! first every share that goes down, then every share that goes up as far as every commitment
//! still fits. Namespaces that are leaving the tenancy (removed from the spec but still held, or
//! terminating) keep what they use and hold until they are gone: they are counted, never written.

use std::collections::BTreeMap;

use commons_crds::labels;
use commons_crds::tenancy::{QuotaStatus, Tenancy};
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::Context;
use super::desired::{self, QUOTA_NAME};
use super::quota::{self, Amounts, Observed};
use crate::apply::apply;
use crate::error::{Error, Result};
use crate::quantity::format_for;

/// What applying the quota found.
#[derive(Debug, Default)]
pub(super) struct QuotaOutcome {
    pub(super) status: Option<QuotaStatus>,
    pub(super) exhausted: Vec<String>,
}

fn observe(rq: Option<&ResourceQuota>, namespace: &str, wanted: Amounts) -> Observed {
    let Some(rq) = rq else {
        return Observed { namespace: namespace.into(), wanted, ..Observed::default() };
    };
    Observed {
        namespace: namespace.into(),
        hard: Some(crate::quantity::amounts(rq.spec.as_ref().and_then(|s| s.hard.as_ref()))),
        used: crate::quantity::amounts(rq.status.as_ref().and_then(|s| s.used.as_ref())),
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
    meta_ok && crate::quantity::amounts(rq.spec.as_ref().and_then(|s| s.hard.as_ref())) == *hard
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
pub(super) async fn apply_quota(
    ctx: &Context,
    tenancy: &Tenancy,
    namespaces: &[String],
    leaving: &[String],
    limits: &Amounts,
    suspended: Option<super::status::Suspension>,
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
    // What the leaving namespaces hold stays theirs until they are gone: the others share the rest.
    let leaving: Vec<Observed> =
        leaving.iter().map(|ns| at_least(observe(found(ns), ns, Amounts::new()), counted.get(ns))).collect();
    let held: BTreeMap<String, Amounts> = leaving
        .iter()
        .map(|o| (o.namespace.clone(), commitment(&o.used, o.hard.as_ref().unwrap_or(&Amounts::new()))))
        .collect();
    let held_amounts: Vec<Amounts> = held.values().cloned().collect();
    let plan = quota::plan(&quota::left_after(limits, &held_amounts), &observed, suspended.is_some());

    // Phase 1: lower (or create at usage) every share that goes down; learn each commitment.
    // Under the tenancy lock, and with no network call made while it is held: read what the
    // webhook has admitted, decide each lowered share (never below that: some of it may not have
    // reached the ResourceQuota yet, which would then refuse it), and hand the webhook each share
    // about to be written, so from then on it decides against that share. The writes follow once
    // the lock is released.
    let first: BTreeMap<String, (Amounts, bool)> = {
        let lock = ctx.demand.tenancy_lock(&name);
        let _turn = lock.lock().await;
        let admitted = ctx.demand.webhook_usage(&name);
        observed
            .iter()
            .map(|o| {
                let step = quota::lowered(
                    &plan[&o.namespace],
                    o.hard.as_ref(),
                    &o.used,
                    admitted.get(&o.namespace).unwrap_or(&Amounts::new()),
                );
                let write = !quota_up_to_date(tenancy, found(&o.namespace), &o.namespace, &step);
                let pin = quota::pinned_while_written(&step, o.hard.as_ref());
                if write && !pin.is_empty() {
                    ctx.demand.lowering(&o.namespace, &pin);
                }
                (o.namespace.clone(), (step, write))
            })
            .collect()
    };
    let mut commitments: BTreeMap<String, Amounts> = held;
    for o in &observed {
        let (step, write) = &first[&o.namespace];
        let used = if *write {
            let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &o.namespace);
            let stored = apply(&api, &desired::resource_quota(tenancy, &o.namespace, step)).await?;
            crate::quantity::amounts(stored.status.as_ref().and_then(|s| s.used.as_ref()))
        } else {
            o.used.clone()
        };
        commitments.insert(o.namespace.clone(), commitment(&used, step));
    }
    let first: BTreeMap<String, Amounts> = first.into_iter().map(|(ns, (step, _))| (ns, step)).collect();
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
            let used = crate::quantity::amounts(stored.status.as_ref().and_then(|s| s.used.as_ref()));
            commitments.insert(o.namespace.clone(), commitment(&used, &fin));
        }
    }

    if limits.is_empty() {
        return Ok(QuotaOutcome::default());
    }
    let mut used_total = Amounts::new();
    for o in observed.iter().chain(&leaving) {
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

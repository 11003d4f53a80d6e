//! Writing each namespace's share of the tenancy's limits, in two passes that never let the
//! shares add up to more than the limit (see [`super::quota`] for the plan and docs/tenancy.md):
//! first every share that goes down, then every share that goes up as far as every commitment
//! still fits. Namespaces that are leaving the tenancy (removed from the spec but still held, or
//! terminating) keep what they use and hold until they are gone: they are counted, never written.

use std::collections::BTreeMap;
use std::sync::Arc;

use commons_crds::labels;
use commons_crds::tenancy::{QuotaStatus, Tenancy};
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::Context;
use super::desired::{self, QUOTA_NAME};
use super::quota::{self, Amounts, Observed};
use crate::apply::create_or_update;
use crate::compare::Compare;
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
    let meta_ok = crate::compare::is_subset(
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

/// What was read of a tenancy's quotas, and the shares planned from it.
struct Reading {
    observed: Vec<Observed>,
    leaving: Vec<Observed>,
    /// What each leaving namespace holds until it is gone.
    held: BTreeMap<String, Amounts>,
    plan: BTreeMap<String, Amounts>,
}

impl Reading {
    fn new(
        ctx: &Context,
        tenancy: &str,
        (namespaces, leaving): (&[String], &[String]),
        limits: &Amounts,
        suspended: bool,
        found: impl Fn(&str) -> Option<Arc<ResourceQuota>>,
    ) -> Reading {
        // Usage as the webhook counts it too: a ResourceQuota's `used` can lag its namespace's
        // pods for minutes (seen: 2 used with 3 running), and a namespace refused by its share
        // would then never look starved.
        let counted = ctx.demand.webhook_usage(tenancy);
        let observed: Vec<Observed> = namespaces
            .iter()
            .map(|ns| at_least(observe(found(ns).as_deref(), ns, ctx.demand.wanted(ns)), counted.get(ns)))
            .collect();
        // What the leaving namespaces hold stays theirs until they are gone: the others share the
        // rest.
        let leaving: Vec<Observed> = leaving
            .iter()
            .map(|ns| at_least(observe(found(ns).as_deref(), ns, Amounts::new()), counted.get(ns)))
            .collect();
        let held: BTreeMap<String, Amounts> = leaving
            .iter()
            .map(|o| (o.namespace.clone(), commitment(&o.used, o.hard.as_ref().unwrap_or(&Amounts::new()))))
            .collect();
        let held_amounts: Vec<Amounts> = held.values().cloned().collect();
        let plan = quota::plan(&quota::left_after(limits, &held_amounts), &observed, suspended);
        Reading { observed, leaving, held, plan }
    }

    /// Whether every share is stored as planned and none would be raised: then nothing is written.
    fn in_place(
        &self,
        tenancy: &Tenancy,
        limits: &Amounts,
        admitted: &BTreeMap<String, Amounts>,
        found: impl Fn(&str) -> Option<Arc<ResourceQuota>>,
    ) -> bool {
        let mut commitments = self.held.clone();
        let mut steps = BTreeMap::new();
        for o in &self.observed {
            let step = quota::lowered(
                &self.plan[&o.namespace],
                o.hard.as_ref(),
                &o.used,
                admitted.get(&o.namespace).unwrap_or(&Amounts::new()),
            );
            if !quota_up_to_date(tenancy, found(&o.namespace).as_deref(), &o.namespace, &step) {
                return false;
            }
            commitments.insert(o.namespace.clone(), commitment(&o.used, &step));
            steps.insert(o.namespace.clone(), step);
        }
        self.observed.iter().all(|o| {
            let step = &steps[&o.namespace];
            raised(&self.plan[&o.namespace], step, limits, &o.namespace, &commitments) == *step
        })
    }
}

/// A namespace's share raised from `step` towards `target`, each resource only as far as every
/// other namespace's commitment still fits the limit.
fn raised(
    target: &Amounts,
    step: &Amounts,
    limits: &Amounts,
    namespace: &str,
    commitments: &BTreeMap<String, Amounts>,
) -> Amounts {
    let mut fin = step.clone();
    for (r, t) in target {
        if let Some(total) = limits.get(r) {
            let ceiling = quota::safe_ceiling(r, *total, namespace, commitments);
            let s = step.get(r).copied().unwrap_or_default();
            fin.insert(r.clone(), s.max((*t).min(ceiling)));
        }
    }
    fin
}

/// A refusal a namespace's share now meets is no longer demand (else an idle namespace that was
/// refused a minute ago would keep drawing headroom from one that asks now).
fn forget_met_demand(ctx: &Context, o: &Observed, share: &Amounts) {
    for (r, want) in &o.wanted {
        let used = o.used.get(r).copied().unwrap_or_default();
        if share.get(r).is_some_and(|h| used + *want <= *h) {
            ctx.demand.satisfied(&o.namespace, r);
        }
    }
}

/// Writes each namespace's share of the tenancy's limits, safely: see `quota` and docs/tenancy.md.
/// `namespaces` are the tenancy's, `created` those of them this reconcile has just made.
pub(super) async fn apply_quota(
    ctx: &Context,
    tenancy: &Tenancy,
    (namespaces, created): (&[String], &[String]),
    leaving: &[String],
    limits: &Amounts,
    suspended: Option<super::status::Suspension>,
) -> Result<QuotaOutcome> {
    let name = tenancy.name_any();
    let which = (namespaces, leaving);
    // First from the store: when it shows every share in place, as it does for almost every
    // reconcile of a settled tenancy, nothing is read from the apiserver or written. (A store that
    // lags misses at most a rebalance until the quota change it lags behind arrives, which
    // triggers another reconcile.)
    // Decoded from the store's compact form as they are read.
    let stored = |ns: &str| {
        ctx.stores
            .quotas
            .get(&ObjectRef::new(QUOTA_NAME).within(ns))
            .and_then(|s| s.object().ok())
            .map(Arc::new)
    };
    let from_store = Reading::new(ctx, &name, which, limits, suspended.is_some(), stored);
    if from_store.in_place(tenancy, limits, &ctx.demand.webhook_usage(&name), stored) {
        for o in &from_store.observed {
            forget_met_demand(ctx, o, o.hard.as_ref().unwrap_or(&Amounts::new()));
        }
        return Ok(outcome(limits, &from_store));
    }
    // Something is to be written: a consistent read, not the reflector store, as the safety
    // argument needs the latest hard and used values of every namespace. Unless every namespace
    // was made by this reconcile a moment ago (a new tenancy): none can hold a ResourceQuota or
    // anything it counts yet, so there is nothing to read (and should another writer have made
    // one since, the create finds it and Commons reads it then).
    let listed: Vec<Arc<ResourceQuota>> = if nothing_to_read(namespaces, created, leaving) {
        Vec::new()
    } else {
        let all: Api<ResourceQuota> = Api::all(ctx.client.clone());
        let selector = ListParams::default().labels(&format!("{}={name}", labels::TENANCY));
        let listed = all.list(&selector).await.map_err(|source| Error::Kube {
            context: format!("listing ResourceQuotas of Tenancy {name}"),
            source,
        })?;
        listed.items.into_iter().map(Arc::new).collect()
    };
    let found = |ns: &str| {
        listed.iter().find(|rq| rq.namespace().as_deref() == Some(ns) && rq.name_any() == QUOTA_NAME).cloned()
    };
    let reading = Reading::new(ctx, &name, which, limits, suspended.is_some(), found);
    let (observed, plan, held) = (&reading.observed, &reading.plan, reading.held.clone());

    // Phase 1: lower every share that goes down; learn each commitment.
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
                let write = !quota_up_to_date(tenancy, found(&o.namespace).as_deref(), &o.namespace, &step);
                let pin = quota::pinned_while_written(&step, o.hard.as_ref());
                if write && !pin.is_empty() {
                    ctx.demand.lowering(&o.namespace, &pin);
                }
                (o.namespace.clone(), (step, write))
            })
            .collect()
    };
    // A namespace whose ResourceQuota is not made yet is written once, in the second pass, at its
    // final share: nothing stored limits it before then either way (the webhook keeps to `step`,
    // handed to it above), and its commitment counts from now on, so every other namespace's raise
    // is still bounded by it. Creating it at usage first would only add a write.
    let to_create: std::collections::BTreeSet<String> = observed
        .iter()
        .filter(|o| o.hard.is_none() && first[&o.namespace].1)
        .map(|o| o.namespace.clone())
        .collect();
    let mut commitments: BTreeMap<String, Amounts> = held;
    // What phase 1 stored, which phase 2 compares with (the list read before is older by then).
    let mut lowered: BTreeMap<String, ResourceQuota> = BTreeMap::new();
    for o in observed {
        let (step, write) = &first[&o.namespace];
        let used = if *write && !to_create.contains(&o.namespace) {
            let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &o.namespace);
            let want = desired::resource_quota(tenancy, &o.namespace, step);
            let stored = create_or_update(&api, &want, found(&o.namespace).as_deref(), Compare::Sets).await?;
            let used = crate::quantity::amounts(stored.status.as_ref().and_then(|s| s.used.as_ref()));
            lowered.insert(o.namespace.clone(), stored);
            used
        } else {
            o.used.clone()
        };
        commitments.insert(o.namespace.clone(), commitment(&used, step));
    }
    let first: BTreeMap<String, Amounts> = first.into_iter().map(|(ns, (step, _))| (ns, step)).collect();
    // Phase 2: raise shares that go up, each only as far as every commitment still fits.
    for o in observed {
        let step = &first[&o.namespace];
        let fin = raised(&plan[&o.namespace], step, limits, &o.namespace, &commitments);
        forget_met_demand(ctx, o, &fin);
        if &fin != step || to_create.contains(&o.namespace) {
            // Until the apiserver's quota admission surely sees the raise, the webhook keeps to
            // the share it raises from.
            let before: Amounts = step
                .iter()
                .filter(|(r, v)| fin.get(*r).is_some_and(|f| f > *v))
                .map(|(r, v)| (r.clone(), *v))
                .collect();
            ctx.demand.raising(&o.namespace, &before);
            let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &o.namespace);
            let want = desired::resource_quota(tenancy, &o.namespace, &fin);
            let observed = lowered.get(&o.namespace).cloned().map(Arc::new).or_else(|| found(&o.namespace));
            let stored = create_or_update(&api, &want, observed.as_deref(), Compare::Sets).await?;
            ctx.demand.raised(&o.namespace);
            let used = crate::quantity::amounts(stored.status.as_ref().and_then(|s| s.used.as_ref()));
            commitments.insert(o.namespace.clone(), commitment(&used, &fin));
        }
    }

    Ok(outcome(limits, &reading))
}

/// Whether every namespace of the tenancy was made just now and none is leaving, so no
/// ResourceQuota of the tenancy can exist to be read.
fn nothing_to_read(namespaces: &[String], created: &[String], leaving: &[String]) -> bool {
    leaving.is_empty() && namespaces.iter().all(|ns| created.contains(ns))
}

/// The tenancy-wide `hard` and `used` for its status, and the resources it has used up.
fn outcome(limits: &Amounts, reading: &Reading) -> QuotaOutcome {
    if limits.is_empty() {
        return QuotaOutcome::default();
    }
    let mut used_total = Amounts::new();
    for o in reading.observed.iter().chain(&reading.leaving) {
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
    QuotaOutcome {
        status: Some(QuotaStatus {
            hard: limits.iter().map(|(k, v)| (k.clone(), format_for(k, *v))).collect(),
            used: limits
                .keys()
                .map(|k| (k.clone(), format_for(k, used_total.get(k).copied().unwrap_or_default())))
                .collect(),
        }),
        exhausted,
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

    /// What the store shows, as `Reading::new` would read it (no leaving namespaces, no demand
    /// beyond what `observed` says).
    fn reading(limits: &Amounts, observed: Vec<Observed>) -> Reading {
        let plan = quota::plan(limits, &observed, false);
        Reading { observed, leaving: Vec::new(), held: BTreeMap::new(), plan }
    }

    #[test]
    fn a_settled_tenancy_is_in_place_from_the_store_and_anything_to_write_is_not() {
        let tenancy = crate::tenancy::fixtures::TenancyBuilder::new("t").build();
        let limits = pods(12);
        let stored = |shares: &'static [(&'static str, i64)]| {
            let t = tenancy.clone();
            move |n: &str| {
                shares
                    .iter()
                    .find(|(name, _)| *name == n)
                    .map(|(name, hard)| Arc::new(desired::resource_quota(&t, name, &pods(*hard))))
            }
        };
        let none = BTreeMap::new();
        let settled = reading(&limits, vec![ns("t-a", 6, 1, 0), ns("t-b", 6, 0, 0)]);
        assert!(settled.in_place(&tenancy, &limits, &none, stored(&[("t-a", 6), ("t-b", 6)])));

        // A quota not made yet.
        let mut new = ns("t-b", 0, 0, 0);
        new.hard = None;
        let fresh = reading(&limits, vec![ns("t-a", 6, 1, 0), new]);
        assert!(!fresh.in_place(&tenancy, &limits, &none, stored(&[("t-a", 6)])));

        // A namespace that used its whole share while the other idles: headroom moves.
        let starved = reading(&limits, vec![ns("t-a", 6, 6, 0), ns("t-b", 6, 0, 0)]);
        assert!(!starved.in_place(&tenancy, &limits, &none, stored(&[("t-a", 6), ("t-b", 6)])));

        // A share raised by hand past the limit is put back.
        let edited = reading(&limits, vec![ns("t-a", 6, 1, 0), ns("t-b", 9, 0, 0)]);
        assert!(!edited.in_place(&tenancy, &limits, &none, stored(&[("t-a", 6), ("t-b", 9)])));
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

    #[test]
    fn the_quotas_are_read_unless_every_namespace_was_made_just_now() {
        let v = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // (namespaces, made just now, leaving, nothing to read)
        let cases = [
            (v(&["t-a", "t-b"]), v(&["t-a", "t-b"]), v(&[]), true),
            (v(&[]), v(&[]), v(&[]), true),
            (v(&["t-a", "t-b"]), v(&["t-b"]), v(&[]), false),
            (v(&["t-a"]), v(&[]), v(&[]), false),
            (v(&["t-a"]), v(&["t-a"]), v(&["t-old"]), false),
        ];
        for (namespaces, created, leaving, want) in cases {
            assert_eq!(
                nothing_to_read(&namespaces, &created, &leaving),
                want,
                "{namespaces:?} made {created:?} leaving {leaving:?}"
            );
        }
    }
}

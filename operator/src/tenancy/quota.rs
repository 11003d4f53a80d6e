//! Strict tenancy-wide quota, built only on the apiserver's own ResourceQuota admission.
//!
//! Each namespace of a tenancy has one ResourceQuota. Its hard values are shares of the
//! tenancy's limits: they never sum to more than the limit, and the apiserver's quota admission
//! (serialised per ResourceQuota object) refuses anything beyond a namespace's share. Shares move
//! only when they must: when a namespace has used its whole share while headroom sits unused
//! elsewhere (or a namespace, resource or limit is new or lowered). Then shares are recomputed
//! from current usage, decreases are written before increases, and an increase is only written
//! when every namespace's commitment (`max(used, hard)`) still fits the limit. See docs/tenancy.md.
//!
//! This module is pure: it plans hard values from what was observed; the reconciler writes them.

use std::collections::BTreeMap;

use crate::quantity::Milli;

/// A quota resource name (`requests.cpu`, `pods`, ...) mapped to an amount.
pub type Amounts = BTreeMap<String, Milli>;

/// What was observed of one namespace's ResourceQuota.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The namespace.
    pub namespace: String,
    /// `spec.hard`, or `None` when the ResourceQuota does not exist yet.
    pub hard: Option<Amounts>,
    /// `status.used`.
    pub used: Amounts,
    /// What the namespace was recently refused by its share, beyond its usage (see `demand`): it
    /// wants that much more even if it uses nothing yet.
    pub wanted: Amounts,
}

/// The smallest share of a resource worth giving: whole units for counts and bytes, one
/// millicore for CPU.
pub fn granule(resource: &str) -> Milli {
    if resource.ends_with("cpu") { Milli(1) } else { Milli(1000) }
}

/// What the webhook must keep to while `step` is written over a ResourceQuota that holds
/// `current` (none when it does not exist yet): every share that goes down, and every share the
/// quota does not have yet (until the write lands, nothing else limits it).
pub fn pinned_while_written(step: &Amounts, current: Option<&Amounts>) -> Amounts {
    step.iter()
        .filter(|(r, v)| current.and_then(|c| c.get(*r)).is_none_or(|c| *v < c))
        .map(|(r, v)| (r.clone(), *v))
        .collect()
}

/// What of `limits` is left for the namespaces that stay once `held` is set aside: what each
/// namespace that is leaving (removed but kept, or terminating) still holds until it is gone.
/// Never below zero.
pub fn left_after(limits: &Amounts, held: &[Amounts]) -> Amounts {
    limits
        .iter()
        .map(|(resource, total)| {
            let taken: Milli = held.iter().filter_map(|h| h.get(resource).copied()).sum();
            (resource.clone(), total.saturating_sub(taken))
        })
        .collect()
}

/// Plans the hard values of every namespace from the tenancy's `limits` and what was observed.
///
/// Stable: unless a namespace is starved (it has used its whole share while another namespace
/// holds headroom it does not use), or a share is missing, or the shares add up to more than the
/// limit, the current hard values are returned unchanged, so an idle tenancy is never written to.
/// When `suspended`, every namespace's `pods` is 0 (nothing new starts).
pub fn plan(limits: &Amounts, observed: &[Observed], suspended: bool) -> BTreeMap<String, Amounts> {
    let mut out: BTreeMap<String, Amounts> =
        observed.iter().map(|o| (o.namespace.clone(), Amounts::new())).collect();
    for (resource, total) in limits {
        for (ns, amount) in plan_resource(resource, *total, observed) {
            if let Some(a) = out.get_mut(&ns) {
                a.insert(resource.clone(), amount);
            }
        }
    }
    if suspended {
        for amounts in out.values_mut() {
            amounts.insert("pods".into(), Milli::ZERO);
        }
    }
    out
}

fn get(a: &Amounts, resource: &str) -> Milli {
    a.get(resource).copied().unwrap_or_default()
}

/// Whether a namespace is starved of `resource`: it has usage and has used all of its share, or
/// it was recently refused more than its share leaves. (A namespace with neither gives no sign of
/// wanting more, so it never counts: counting it would move headroom back and forth between idle
/// namespaces.)
fn exhausted(o: &Observed, resource: &str) -> bool {
    let used = get(&o.used, resource);
    let want = get(&o.wanted, resource);
    o.hard.as_ref().is_some_and(|h| {
        let hard = get(h, resource);
        (used > Milli::ZERO && used >= hard) || (want > Milli::ZERO && used + want > hard)
    })
}

/// Whether the current shares of `resource` must be recomputed.
fn must_rebalance(resource: &str, total: Milli, observed: &[Observed]) -> bool {
    let g = granule(resource);
    let hard = |o: &Observed| o.hard.as_ref().and_then(|h| h.get(resource).copied());
    if observed.iter().any(|o| hard(o).is_none()) {
        return true;
    }
    let hard_sum: Milli = observed.iter().filter_map(hard).sum();
    if hard_sum > total {
        return true;
    }
    let unallocated = total.saturating_sub(hard_sum);
    let slack_elsewhere = |me: &Observed| {
        unallocated >= g
            || observed.iter().any(|o| {
                o.namespace != me.namespace
                    && hard(o).unwrap_or_default().saturating_sub(get(&o.used, resource)) >= g
            })
    };
    observed.iter().any(|o| exhausted(o, resource) && slack_elsewhere(o))
}

fn plan_resource(resource: &str, total: Milli, observed: &[Observed]) -> Vec<(String, Milli)> {
    if !must_rebalance(resource, total, observed) {
        return observed
            .iter()
            .map(|o| (o.namespace.clone(), o.hard.as_ref().map(|h| get(h, resource)).unwrap_or_default()))
            .collect();
    }
    let g = granule(resource);
    let used_sum: Milli = observed.iter().map(|o| get(&o.used, resource)).sum();
    let mut free = total.saturating_sub(used_sum);
    // A namespace refused by its share first gets what it asked for, as far as headroom goes
    // (by name), so a request larger than an equal part can still be met.
    let mut asked: BTreeMap<&str, Milli> = BTreeMap::new();
    for o in observed {
        let asked_units = (get(&o.wanted, resource).0 + g.0 - 1) / g.0;
        let want = Milli(asked_units.min(free.0 / g.0) * g.0);
        if want > Milli::ZERO {
            asked.insert(o.namespace.as_str(), want);
            free = free.saturating_sub(want);
        }
    }
    let n = i128::try_from(observed.len()).unwrap_or(i128::MAX).max(1);
    let units = free.0 / g.0;
    let base = units / n;
    let mut remainder = units % n;
    // Remainder units (fewer than one per namespace) go first to namespaces that were refused
    // more, then to those using the most, then by name: a namespace using headroom alone can take
    // all of it, and the plan depends on usage and demand alone, so re-planning an unchanged
    // tenancy gives the same plan and never flaps.
    let mut order: Vec<&Observed> = observed.iter().collect();
    order.sort_by_key(|o| {
        (
            std::cmp::Reverse(get(&o.wanted, resource) > Milli::ZERO),
            std::cmp::Reverse(get(&o.used, resource)),
            o.namespace.clone(),
        )
    });
    let mut out = Vec::with_capacity(observed.len());
    for o in order {
        let extra = if remainder > 0 {
            remainder -= 1;
            1
        } else {
            0
        };
        let granted = asked.get(o.namespace.as_str()).copied().unwrap_or_default();
        out.push((o.namespace.clone(), get(&o.used, resource) + granted + Milli((base + extra) * g.0)));
    }
    out
}

/// The most `namespace` may be raised to for `resource` so that every namespace's commitment
/// (`max(used, hard)`, the most it can ever use without a further raise) still fits `total`.
pub fn safe_ceiling(
    resource: &str,
    total: Milli,
    namespace: &str,
    commitments: &BTreeMap<String, Amounts>,
) -> Milli {
    let others: Milli =
        commitments.iter().filter(|(ns, _)| ns.as_str() != namespace).map(|(_, a)| get(a, resource)).sum();
    total.saturating_sub(others)
}

/// The first of the two steps that move a namespace's share to `target`: each resource goes down
/// to `target` now, or stays where it is (`hard`, else `used` for a quota not yet made) when the
/// target is higher; never below what the webhook has already `admitted` there (it may not have
/// reached the ResourceQuota yet, which would then refuse it). Raises follow once every lowered
/// share is stored, each only as far as [`safe_ceiling`] allows.
pub fn lowered(target: &Amounts, hard: Option<&Amounts>, used: &Amounts, admitted: &Amounts) -> Amounts {
    target
        .iter()
        .map(|(r, t)| {
            let now = hard.and_then(|h| h.get(r)).copied().unwrap_or_else(|| get(used, r));
            let floor = get(admitted, r).min(now);
            (r.clone(), (*t).min(now).max(floor))
        })
        .collect()
}

#[cfg(test)]
mod left_after_tests {
    use super::*;

    #[test]
    fn the_webhook_keeps_to_lowered_and_new_shares_while_they_are_written() {
        let a = |pairs: &[(&str, i64)]| -> Amounts {
            pairs.iter().map(|(r, n)| ((*r).to_owned(), Milli::units(*n))).collect()
        };
        let step = a(&[("pods", 3), ("requests.memory", 8), ("services.loadbalancers", 1)]);
        assert_eq!(pinned_while_written(&step, None), step, "a quota not made yet: every share");
        let current = a(&[("pods", 5), ("requests.memory", 8)]);
        assert_eq!(
            pinned_while_written(&step, Some(&current)),
            a(&[("pods", 3), ("services.loadbalancers", 1)]),
            "lowered and new shares; an unchanged one needs no pin"
        );
    }

    #[test]
    fn leaving_namespaces_keep_what_they_hold() {
        let a = |pairs: &[(&str, i64)]| -> Amounts {
            pairs.iter().map(|(r, n)| ((*r).to_owned(), Milli::units(*n))).collect()
        };
        let limits = a(&[("pods", 10), ("requests.memory", 8)]);
        assert_eq!(left_after(&limits, &[]), limits);
        assert_eq!(
            left_after(&limits, &[a(&[("pods", 3)]), a(&[("pods", 2), ("requests.memory", 1)])]),
            a(&[("pods", 5), ("requests.memory", 7)])
        );
        assert_eq!(
            left_after(&limits, &[a(&[("pods", 12)])]),
            a(&[("pods", 0), ("requests.memory", 8)]),
            "never below zero"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_step_lowers_only_and_never_below_what_was_admitted() {
        // (target, hard, used, admitted) → step, for pods.
        let cases: [(i64, Option<i64>, i64, i64, i64); 6] = [
            (2, Some(5), 1, 0, 2), // lowered to the target
            (8, Some(5), 1, 0, 5), // a raise waits for the second step
            (2, Some(5), 1, 4, 4), // not below what the webhook admitted
            (2, Some(3), 1, 9, 3), // nor above where it was
            (4, None, 2, 0, 2),    // a new quota starts at what is used
            (0, Some(5), 0, 0, 0), // suspended: down to nothing
        ];
        for (target, hard, used, admitted, want) in cases {
            let step = lowered(
                &amounts(&[("pods", target)]),
                hard.map(|h| amounts(&[("pods", h)])).as_ref(),
                &amounts(&[("pods", used)]),
                &amounts(&[("pods", admitted)]),
            );
            assert_eq!(
                step,
                amounts(&[("pods", want)]),
                "target {target}, hard {hard:?}, used {used}, admitted {admitted}"
            );
        }
    }

    fn amounts(pairs: &[(&str, i64)]) -> Amounts {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), Milli::units(*v))).collect()
    }

    fn ns(name: &str, hard: Option<i64>, used: i64) -> Observed {
        Observed {
            namespace: name.into(),
            hard: hard.map(|h| amounts(&[("pods", h)])),
            used: amounts(&[("pods", used)]),
            wanted: Default::default(),
        }
    }

    #[test]
    fn a_refused_namespace_gets_the_last_units_even_with_no_usage() {
        // One unit, two namespaces: the first got it by name and does not use it.
        let limits = amounts(&[("pods", 1)]);
        let mut obs = [ns("t-a", Some(1), 0), ns("t-b", Some(0), 0)];
        assert_eq!(pods(&plan(&limits, &obs, false)), vec![("t-a".into(), 1), ("t-b".into(), 0)]);
        // t-b was refused by its share: the unit moves to it.
        obs[1].wanted.insert("pods".into(), Milli::units(1));
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("t-a".into(), 0), ("t-b".into(), 1)]);
        // Once t-b uses it, t-a's refusal cannot take it away.
        let mut after = [ns("t-a", Some(0), 0), ns("t-b", Some(1), 1)];
        after[0].wanted.insert("pods".into(), Milli::units(1));
        assert_eq!(pods(&plan(&limits, &after, false)), vec![("t-a".into(), 0), ("t-b".into(), 1)]);
    }

    #[test]
    fn a_refused_request_larger_than_an_equal_part_is_met_when_headroom_allows() {
        // 2 units; t-a uses 1 and holds 1.5 after a split; t-b holds 0.5 and asks for 1.
        let limits = amounts(&[("pods", 4)]);
        let mut obs = [ns("t-a", Some(3), 2), ns("t-b", Some(1), 0)];
        assert_eq!(pods(&plan(&limits, &obs, false)), vec![("t-a".into(), 3), ("t-b".into(), 1)]);
        obs[1].wanted.insert("pods".into(), Milli::units(2));
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("t-a".into(), 2), ("t-b".into(), 2)]);
        // Re-planning with the new shares and the same demand changes nothing.
        let next: Vec<Observed> =
            obs.iter().map(|o| Observed { hard: Some(p[&o.namespace].clone()), ..o.clone() }).collect();
        assert_eq!(plan(&limits, &next, false), p);
    }

    fn pods(plan: &BTreeMap<String, Amounts>) -> Vec<(String, i128)> {
        plan.iter().map(|(n, a)| (n.clone(), get(a, "pods").0 / 1000)).collect()
    }

    fn sum(plan: &BTreeMap<String, Amounts>) -> i128 {
        plan.values().map(|a| get(a, "pods").0 / 1000).sum()
    }

    #[test]
    fn a_new_tenancy_splits_its_limit_evenly() {
        let limits = amounts(&[("pods", 12)]);
        let obs = [ns("t-a", None, 0), ns("t-b", None, 0), ns("t-c", None, 0)];
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("t-a".into(), 4), ("t-b".into(), 4), ("t-c".into(), 4)]);
    }

    #[test]
    fn an_idle_tenancy_keeps_its_plan() {
        let limits = amounts(&[("pods", 12)]);
        // An uneven plan from earlier activity stays as it is while nothing changes.
        let obs = [ns("t-a", Some(1), 0), ns("t-b", Some(0), 0), ns("t-c", Some(11), 9)];
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("t-a".into(), 1), ("t-b".into(), 0), ("t-c".into(), 11)]);
    }

    #[test]
    fn a_namespace_using_headroom_alone_can_take_all_of_it() {
        let limits = amounts(&[("pods", 12)]);
        let mut obs = vec![ns("t-a", Some(4), 0), ns("t-b", Some(4), 0), ns("t-c", Some(4), 0)];
        for _ in 0..20 {
            // t-c uses everything it was given; the others stay idle.
            let c = obs.iter_mut().find(|o| o.namespace == "t-c").unwrap();
            let hard_c = get(c.hard.as_ref().unwrap(), "pods");
            c.used = amounts(&[("pods", 0)]);
            c.used.insert("pods".into(), hard_c);
            let p = plan(&limits, &obs, false);
            assert!(sum(&p) <= 12, "{p:?}");
            for o in &mut obs {
                o.hard = Some(p[&o.namespace].clone());
            }
        }
        let c = obs.iter().find(|o| o.namespace == "t-c").unwrap();
        assert_eq!(get(&c.used, "pods"), Milli::units(12), "{obs:?}");
    }

    #[test]
    fn headroom_held_idle_moves_to_a_namespace_that_used_its_whole_share() {
        let limits = amounts(&[("pods", 12)]);
        // Settled, but t-c has used all of its 11 while t-a holds 1 it does not use.
        let obs = [ns("t-a", Some(1), 0), ns("t-b", Some(0), 0), ns("t-c", Some(11), 11)];
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("t-a".into(), 0), ("t-b".into(), 0), ("t-c".into(), 12)]);
        // And that plan is stable.
        let next: Vec<Observed> =
            obs.iter().map(|o| Observed { hard: Some(p[&o.namespace].clone()), ..o.clone() }).collect();
        assert_eq!(plan(&limits, &next, false), p);
    }

    #[test]
    fn the_last_units_do_not_flap_between_busy_namespaces() {
        let limits = amounts(&[("pods", 12)]);
        let obs = [ns("a", Some(4), 3), ns("b", Some(4), 4), ns("c", Some(4), 4)];
        let first = plan(&limits, &obs, false);
        assert_eq!(pods(&first), vec![("a".into(), 3), ("b".into(), 5), ("c".into(), 4)]);
        let next: Vec<Observed> =
            obs.iter().map(|o| Observed { hard: Some(first[&o.namespace].clone()), ..o.clone() }).collect();
        assert_eq!(plan(&limits, &next, false), first, "re-planning the same usage changes nothing");
    }

    /// Over many generated states: a plan never exceeds the limit (unless usage already does),
    /// never drops below usage, and re-planning with the same usage changes nothing.
    #[test]
    fn plans_are_bounded_and_idempotent_over_generated_states() {
        let mut seed: u64 = 0x5eed;
        let mut next = |m: i64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            i64::try_from((seed >> 33) % u64::try_from(m).unwrap()).unwrap()
        };
        for _ in 0..5000 {
            let total = next(30);
            let n = 1 + next(5);
            let obs: Vec<Observed> = (0..n)
                .map(|i| {
                    let hard = if next(6) == 0 { None } else { Some(next(15)) };
                    ns(&format!("n{i}"), hard, next(10))
                })
                .collect();
            let limits = amounts(&[("pods", total)]);
            let p = plan(&limits, &obs, false);
            let used_sum: i128 = obs.iter().map(|o| get(&o.used, "pods").0 / 1000).sum();
            let hard_sum: i128 =
                obs.iter().map(|o| o.hard.as_ref().map_or(0, |h| get(h, "pods").0 / 1000)).sum();
            let changed = obs.iter().any(|o| o.hard.as_ref() != Some(&p[&o.namespace]));
            if changed {
                assert!(sum(&p) <= i128::from(total).max(used_sum), "{obs:?} -> {p:?}");
                for o in &obs {
                    assert!(get(&p[&o.namespace], "pods") >= get(&o.used, "pods"), "{obs:?} -> {p:?}");
                }
            } else {
                assert!(hard_sum <= i128::from(total) || hard_sum <= used_sum, "{obs:?}");
            }
            let again: Vec<Observed> =
                obs.iter().map(|o| Observed { hard: Some(p[&o.namespace].clone()), ..o.clone() }).collect();
            assert_eq!(plan(&limits, &again, false), p, "re-planning {again:?} moved something");
        }
    }

    #[test]
    fn idle_namespaces_do_not_pull_headroom_back_and_forth() {
        let limits = amounts(&[("pods", 10)]);
        let obs = [ns("a", Some(1), 0), ns("b", Some(0), 0), ns("c", Some(9), 5)];
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("a".into(), 1), ("b".into(), 0), ("c".into(), 9)]);
    }

    #[test]
    fn a_plan_never_exceeds_the_limit_and_never_goes_below_usage() {
        let limits = amounts(&[("pods", 10)]);
        for used in [[0, 0, 0], [3, 3, 3], [10, 0, 0], [4, 0, 5], [1, 2, 3]] {
            let obs: Vec<_> = ["a", "b", "c"].iter().zip(used).map(|(n, u)| ns(n, Some(0), u)).collect();
            let p = plan(&limits, &obs, false);
            assert!(sum(&p) <= 10, "{used:?} -> {p:?}");
            for o in &obs {
                assert!(get(&p[&o.namespace], "pods") >= get(&o.used, "pods"));
            }
        }
    }

    #[test]
    fn over_the_limit_every_namespace_is_held_at_its_usage() {
        let limits = amounts(&[("pods", 4)]);
        let obs = [ns("a", Some(5), 3), ns("b", Some(5), 3)];
        assert_eq!(pods(&plan(&limits, &obs, false)), vec![("a".into(), 3), ("b".into(), 3)]);
    }

    #[test]
    fn suspension_sets_pods_to_zero_everywhere() {
        let limits = amounts(&[("requests.cpu", 4)]);
        let obs = [ns("a", None, 2), ns("b", None, 0)];
        let p = plan(&limits, &obs, true);
        assert!(p.values().all(|a| a["pods"] == Milli::ZERO));
        assert!(p.values().all(|a| a.contains_key("requests.cpu")));
    }

    #[test]
    fn cpu_is_split_to_the_millicore() {
        let limits: Amounts = [("requests.cpu".to_owned(), "1".parse().unwrap())].into();
        let obs = [
            Observed { namespace: "a".into(), ..Default::default() },
            Observed { namespace: "b".into(), ..Default::default() },
            Observed { namespace: "c".into(), ..Default::default() },
        ];
        let p = plan(&limits, &obs, false);
        let got: Vec<i128> = p.values().map(|a| a["requests.cpu"].0).collect();
        assert_eq!(got, vec![334, 333, 333]);
    }

    #[test]
    fn the_safe_ceiling_counts_every_other_namespaces_commitment() {
        let commitments: BTreeMap<String, Amounts> = [
            ("a".into(), amounts(&[("pods", 5)])),
            ("b".into(), amounts(&[("pods", 3)])),
            ("c".into(), amounts(&[("pods", 1)])),
        ]
        .into();
        assert_eq!(safe_ceiling("pods", Milli::units(10), "c", &commitments), Milli::units(2));
        assert_eq!(safe_ceiling("pods", Milli::units(7), "c", &commitments), Milli::ZERO);
    }
}

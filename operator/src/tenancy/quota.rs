//! Strict tenancy-wide quota, built only on the apiserver's own ResourceQuota admission.
//!
//! Each namespace of a tenancy has one ResourceQuota. Its hard values are the namespace's usage
//! plus a share of the tenancy's free headroom, so the hard values of all namespaces never sum to
//! more than the tenancy's limit, and the apiserver's quota admission (which is serialised per
//! ResourceQuota object) refuses anything beyond a namespace's share. As usage changes the
//! headroom is rebalanced: shares are recomputed from current usage, decreases are written before
//! increases, and an increase is only written when the namespaces' commitments
//! (`max(used, hard)` of each) still fit the limit. See docs/tenancy.md for the whole algorithm.
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
    /// The usage the current hard values were planned from (recorded on the ResourceQuota).
    pub basis: Option<Amounts>,
}

/// The smallest share of a resource worth giving: whole units for counts and bytes, one
/// millicore for CPU.
pub fn granule(resource: &str) -> Milli {
    if resource.ends_with("cpu") { Milli(1) } else { Milli(1000) }
}

/// Plans the hard values of every namespace from the tenancy's `limits` and what was observed.
///
/// Stable: when no usage has changed since the current hard values were planned, and they account
/// for exactly the limit, the current hard values are returned unchanged, so an idle tenancy is
/// never written to. When `suspended`, every namespace's `pods` is 0 (nothing new starts).
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

fn plan_resource(resource: &str, total: Milli, observed: &[Observed]) -> Vec<(String, Milli)> {
    let used_sum: Milli = observed.iter().map(|o| get(&o.used, resource)).sum();
    let hard_sum: Option<Milli> = observed
        .iter()
        .map(|o| o.hard.as_ref().and_then(|h| h.get(resource).copied()))
        .sum::<Option<Milli>>();
    let settled =
        observed.iter().all(|o| o.basis.as_ref().is_some_and(|b| get(b, resource) == get(&o.used, resource)));
    let target_sum = if used_sum >= total {
        used_sum
    } else {
        total_in_granules(resource, total, used_sum, observed.len())
    };
    if settled && hard_sum == Some(target_sum) {
        // Nothing moved since the last plan: keep it.
        return observed
            .iter()
            .map(|o| (o.namespace.clone(), o.hard.as_ref().map(|h| get(h, resource)).unwrap_or_default()))
            .collect();
    }
    let g = granule(resource);
    let free = total.saturating_sub(used_sum);
    let n = i128::try_from(observed.len()).unwrap_or(i128::MAX).max(1);
    let units = free.0 / g.0;
    let base = units / n;
    let mut remainder = units % n;
    // Remainder units go first to namespaces whose usage grew since the last plan (they are
    // consuming now), then by name, so a namespace using headroom alone can take all of it.
    let mut order: Vec<&Observed> = observed.iter().collect();
    order.sort_by_key(|o| {
        let grew = o.basis.as_ref().is_none_or(|b| get(&o.used, resource) > get(b, resource));
        (!grew, o.namespace.clone())
    });
    let mut out = Vec::with_capacity(observed.len());
    for o in order {
        let extra = if remainder > 0 {
            remainder -= 1;
            1
        } else {
            0
        };
        out.push((o.namespace.clone(), get(&o.used, resource) + Milli((base + extra) * g.0)));
    }
    out
}

/// The sum of hard values a fresh plan produces: usage plus the free headroom in whole granules.
fn total_in_granules(resource: &str, total: Milli, used_sum: Milli, _namespaces: usize) -> Milli {
    let g = granule(resource);
    let free = total.saturating_sub(used_sum);
    used_sum + Milli(free.0 / g.0 * g.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(pairs: &[(&str, i64)]) -> Amounts {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), Milli::units(*v))).collect()
    }

    fn ns(name: &str, hard: Option<i64>, used: i64, basis: Option<i64>) -> Observed {
        Observed {
            namespace: name.into(),
            hard: hard.map(|h| amounts(&[("pods", h)])),
            used: amounts(&[("pods", used)]),
            basis: basis.map(|b| amounts(&[("pods", b)])),
        }
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
        let obs = [ns("t-a", None, 0, None), ns("t-b", None, 0, None), ns("t-c", None, 0, None)];
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("t-a".into(), 4), ("t-b".into(), 4), ("t-c".into(), 4)]);
    }

    #[test]
    fn an_idle_tenancy_keeps_its_plan() {
        let limits = amounts(&[("pods", 12)]);
        // An uneven plan from earlier activity stays as it is while nothing changes.
        let obs =
            [ns("t-a", Some(1), 0, Some(0)), ns("t-b", Some(0), 0, Some(0)), ns("t-c", Some(11), 9, Some(9))];
        let p = plan(&limits, &obs, false);
        assert_eq!(pods(&p), vec![("t-a".into(), 1), ("t-b".into(), 0), ("t-c".into(), 11)]);
    }

    #[test]
    fn a_namespace_using_headroom_alone_can_take_all_of_it() {
        let limits = amounts(&[("pods", 12)]);
        let mut obs = vec![
            ns("t-a", Some(4), 0, Some(0)),
            ns("t-b", Some(4), 0, Some(0)),
            ns("t-c", Some(4), 0, Some(0)),
        ];
        for _ in 0..20 {
            // t-c uses everything it was given; the others stay idle.
            let c = obs.iter_mut().find(|o| o.namespace == "t-c").unwrap();
            let hard_c = get(c.hard.as_ref().unwrap(), "pods");
            c.used = amounts(&[("pods", 0)]);
            c.used.insert("pods".into(), hard_c);
            let p = plan(&limits, &obs, false);
            assert!(sum(&p) <= 12, "{p:?}");
            for o in &mut obs {
                o.basis = Some(o.used.clone());
                o.hard = Some(p[&o.namespace].clone());
            }
        }
        let c = obs.iter().find(|o| o.namespace == "t-c").unwrap();
        assert_eq!(get(&c.used, "pods"), Milli::units(12), "{obs:?}");
    }

    #[test]
    fn a_plan_never_exceeds_the_limit_and_never_goes_below_usage() {
        let limits = amounts(&[("pods", 10)]);
        for used in [[0, 0, 0], [3, 3, 3], [10, 0, 0], [4, 0, 5], [1, 2, 3]] {
            let obs: Vec<_> =
                ["a", "b", "c"].iter().zip(used).map(|(n, u)| ns(n, Some(0), u, Some(0))).collect();
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
        let obs = [ns("a", Some(5), 3, Some(0)), ns("b", Some(5), 3, Some(0))];
        assert_eq!(pods(&plan(&limits, &obs, false)), vec![("a".into(), 3), ("b".into(), 3)]);
    }

    #[test]
    fn suspension_sets_pods_to_zero_everywhere() {
        let limits = amounts(&[("requests.cpu", 4)]);
        let obs = [ns("a", None, 2, None), ns("b", None, 0, None)];
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

//! A segment's outside ranges kept outside the cluster (pure): on CNIs that apply `ipBlock` to
//! pod addresses too, an egress or ingress range covering the cluster's pod or service network
//! (`0.0.0.0/0`, say) would open every pod. Such networks are cut out of the range with `except`;
//! a range that lies inside one is not applied at all. Either is reported.

use commons_crds::network_segment::ExternalRule;
use k8s_openapi::api::networking::v1::IPBlock;

use crate::reachability::Cidr;

/// A rule's range as it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded {
    /// The block applied, or `None` when the whole range lies inside a cluster network.
    pub block: Option<IPBlock>,
    /// Why the range was changed, when it was.
    pub finding: Option<String>,
}

/// `rule`'s range with the `cluster` networks cut out; `field` names it in the finding
/// (`spec.egress[0]`).
pub fn guard(rule: &ExternalRule, field: &str, cluster: &[Cidr]) -> Guarded {
    let mut except = rule.except.clone();
    let Some(range) = Cidr::parse(&rule.cidr) else {
        return Guarded {
            block: Some(IPBlock { cidr: rule.cidr.clone(), except: non_empty(except) }),
            finding: None,
        };
    };
    if let Some(inside) = cluster.iter().find(|net| net.covers(&range)) {
        return Guarded {
            block: None,
            finding: Some(format!(
                "{field}.cidr {} lies inside the cluster network {inside}: not applied (a segment's outside ranges must be outside the cluster)",
                rule.cidr
            )),
        };
    }
    let already: Vec<Cidr> = rule.except.iter().filter_map(|e| Cidr::parse(e)).collect();
    let mut cut = Vec::new();
    for net in cluster.iter().filter(|net| range.covers(net)) {
        if !already.iter().any(|e| e.covers(net)) {
            except.push(net.to_string());
            cut.push(net.to_string());
        }
    }
    let finding = (!cut.is_empty()).then(|| {
        format!("{field}.cidr {} covers the cluster network {}: excluded from it", rule.cidr, cut.join(", "))
    });
    Guarded { block: Some(IPBlock { cidr: rule.cidr.clone(), except: non_empty(except) }), finding }
}

fn non_empty(except: Vec<String>) -> Option<Vec<String>> {
    (!except.is_empty()).then_some(except)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(cidr: &str, except: &[&str]) -> ExternalRule {
        serde_json::from_value(serde_json::json!({"cidr": cidr, "except": except})).unwrap()
    }

    /// A range, its except list, the except list applied (`None` when the rule is dropped), and
    /// whether it is reported.
    type Case = (&'static str, &'static [&'static str], Option<&'static [&'static str]>, bool);

    #[test]
    fn cluster_networks_are_cut_out_or_the_range_dropped() {
        let cluster: Vec<Cidr> =
            ["10.0.0.0/16", "10.96.0.0/16", "fd00::/48"].iter().map(|c| Cidr::parse(c).unwrap()).collect();
        let cases: [Case; 7] = [
            ("51.0.0.0/8", &[], Some(&[]), false),
            ("0.0.0.0/0", &[], Some(&["10.0.0.0/16", "10.96.0.0/16"]), true),
            ("10.0.0.0/8", &["10.96.0.0/12"], Some(&["10.96.0.0/12", "10.0.0.0/16"]), true),
            ("10.0.0.0/8", &["10.0.0.0/15", "10.96.0.0/16"], Some(&["10.0.0.0/15", "10.96.0.0/16"]), false),
            ("10.0.3.0/24", &[], None, true),
            ("::/0", &[], Some(&["fd00::/48"]), true),
            ("10.1.0.0/16", &[], Some(&[]), false),
        ];
        for (cidr, except, want, finding) in cases {
            let got = guard(&rule(cidr, except), "spec.egress[0]", &cluster);
            let applied = got.block.as_ref().map(|b| b.except.clone().unwrap_or_default());
            let want: Option<Vec<String>> = want.map(|w| w.iter().map(|s| (*s).to_owned()).collect());
            assert_eq!(applied, want, "{cidr} except {except:?}");
            assert_eq!(got.finding.is_some(), finding, "{cidr}: {:?}", got.finding);
            if let Some(f) = got.finding {
                assert!(f.starts_with(&format!("spec.egress[0].cidr {cidr} ")), "{f}");
            }
        }
    }

    #[test]
    fn without_cluster_networks_ranges_are_applied_as_written() {
        let got = guard(&rule("0.0.0.0/0", &["192.168.0.0/16"]), "spec.ingress[1]", &[]);
        assert_eq!(got.block.unwrap().except, Some(vec!["192.168.0.0/16".to_owned()]));
        assert_eq!(got.finding, None);
    }
}

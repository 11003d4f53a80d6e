//! The NetworkPolicies that realise a segment's paths, and its membership (pure).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use commons_crds::labels;
use commons_crds::network_segment::{ExternalRule, NetworkSegment, RefusedMember};
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use super::ranges;
use crate::membership::{self as admission, Decision};
use crate::naming::{namespace_name, namespaces_named};
use crate::reachability::Cidr;

/// Who is in a segment and who was refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    /// Admitted tenancies, by name, sorted.
    pub members: Vec<String>,
    /// Tenancies that asked and were refused.
    pub refused: Vec<RefusedMember>,
}

/// The membership of `segment` among `tenancies`.
pub fn membership(segment: &NetworkSegment, tenancies: &[Arc<Tenancy>]) -> Membership {
    let mut m = Membership::default();
    for t in tenancies
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none() && admission::requested(segment, t))
    {
        match admission::decide(segment, t) {
            Decision::Admitted => m.members.push(t.name_any()),
            Decision::Refused { reason, message } => {
                m.refused.push(RefusedMember { tenancy: t.name_any(), reason: reason.into(), message })
            }
        }
    }
    m.members.sort();
    m.refused.sort_by(|a, b| a.tenancy.cmp(&b.tenancy));
    m
}

/// Tenancies whose members may reach `segment`'s exposed pods: its members and the members of
/// every segment in its `peers`.
pub fn reach_in(
    segment: &NetworkSegment,
    segments: &[Arc<NetworkSegment>],
    tenancies: &[Arc<Tenancy>],
) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = membership(segment, tenancies).members.into_iter().collect();
    for peer in segments.iter().filter(|s| segment.spec.peers.contains(&s.name_any())) {
        out.extend(membership(peer, tenancies).members);
    }
    out
}

/// Tenancies whose exposed pods `segment`'s members may reach: its members and the members of
/// every segment that lists it in `peers`.
pub fn reach_out(
    segment: &NetworkSegment,
    segments: &[Arc<NetworkSegment>],
    tenancies: &[Arc<Tenancy>],
) -> BTreeSet<String> {
    let name = segment.name_any();
    let mut out: BTreeSet<String> = membership(segment, tenancies).members.into_iter().collect();
    for other in segments.iter().filter(|s| s.spec.peers.contains(&name)) {
        out.extend(membership(other, tenancies).members);
    }
    out
}

fn selector(key: &str, values: impl IntoIterator<Item = String>) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.to_owned(),
            operator: "In".into(),
            values: Some(values.into_iter().collect()),
        }]),
        ..LabelSelector::default()
    }
}

fn exposed() -> LabelSelector {
    selector(labels::EXPOSURE, labels::SEGMENT_EXPOSURES.iter().map(|s| (*s).to_owned()))
}

/// What a segment's outside rule in `field` becomes, with the `cluster` networks cut out; `None`
/// when its whole range lies inside one (see [`ranges`]).
fn external(
    rule: &ExternalRule,
    field: &str,
    cluster: &[Cidr],
) -> Option<(Vec<NetworkPolicyPeer>, Option<Vec<NetworkPolicyPort>>)> {
    let peer = NetworkPolicyPeer {
        ip_block: Some(ranges::guard(rule, field, cluster).block?),
        ..NetworkPolicyPeer::default()
    };
    let ports = (!rule.ports.is_empty()).then(|| {
        rule.ports
            .iter()
            .map(|p| NetworkPolicyPort {
                protocol: Some(p.protocol.as_str().to_owned()),
                port: Some(IntOrString::Int(p.port)),
                end_port: p.end_port,
            })
            .collect()
    });
    Some((vec![peer], ports))
}

/// What was changed in `segment`'s outside ranges to keep them outside the `cluster` networks,
/// one line per rule changed.
pub fn range_findings(segment: &NetworkSegment, cluster: &[Cidr]) -> Vec<String> {
    let rules = segment.spec.egress.iter().enumerate().map(|(i, r)| (format!("spec.egress[{i}]"), r));
    let rules =
        rules.chain(segment.spec.ingress.iter().enumerate().map(|(i, r)| (format!("spec.ingress[{i}]"), r)));
    rules.filter_map(|(field, r)| ranges::guard(r, &field, cluster).finding).collect()
}

/// The name of the policy admitting traffic into a member namespace for `segment`.
pub fn ingress_name(segment: &str) -> String {
    format!("commons-segment-{segment}-ingress")
}

/// The name of the policy letting a member namespace's pods out for `segment`.
pub fn egress_name(segment: &str) -> String {
    format!("commons-segment-{segment}-egress")
}

fn meta(segment: &NetworkSegment, tenancy: &str, name: String, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([
            (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
            (labels::SEGMENT.to_owned(), segment.name_any()),
            (labels::TENANCY.to_owned(), tenancy.to_owned()),
        ])),
        owner_references: Some(segment.controller_owner_ref(&()).into_iter().collect()),
        ..ObjectMeta::default()
    }
}

/// Every NetworkPolicy `segment` needs: two in each namespace of each member (`namespaces` says
/// which namespaces exist and belong to their tenancy), its outside ranges kept out of the
/// `cluster` networks.
pub fn policies(
    segment: &NetworkSegment,
    segments: &[Arc<NetworkSegment>],
    tenancies: &[Arc<Tenancy>],
    namespace_exists: impl Fn(&str, &str) -> bool,
    cluster: &[Cidr],
) -> Vec<NetworkPolicy> {
    let seg = segment.name_any();
    let members = membership(segment, tenancies).members;
    // Peers by namespace name (a label anyone allowed to label a namespace could forge is never
    // trusted), and only namespaces that exist and belong to their tenancy.
    let namespaces_of = |chosen: &BTreeSet<String>| -> Vec<String> {
        tenancies
            .iter()
            .filter(|t| chosen.contains(&t.name_any()))
            .flat_map(|t| {
                let tenancy = t.name_any();
                t.spec.namespaces.iter().map(move |n| (tenancy.clone(), namespace_name(&tenancy, &n.name)))
            })
            .filter(|(tenancy, ns)| namespace_exists(tenancy, ns))
            .map(|(_, ns)| ns)
            .collect()
    };
    let inbound = namespaces_of(&reach_in(segment, segments, tenancies));
    let outbound = namespaces_of(&reach_out(segment, segments, tenancies));
    let mut out = Vec::new();
    for t in tenancies.iter().filter(|t| members.contains(&t.name_any())) {
        let tenancy = t.name_any();
        for ns in t.spec.namespaces.iter().map(|n| namespace_name(&tenancy, &n.name)) {
            if !namespace_exists(&tenancy, &ns) {
                continue;
            }
            let mut ingress = vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespaces_named(inbound.iter().cloned())),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: None,
            }];
            ingress.extend(segment.spec.ingress.iter().enumerate().filter_map(|(i, r)| {
                let (from, ports) = external(r, &format!("spec.ingress[{i}]"), cluster)?;
                Some(NetworkPolicyIngressRule { from: Some(from), ports })
            }));
            out.push(NetworkPolicy {
                metadata: meta(segment, &tenancy, ingress_name(&seg), &ns),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(exposed()),
                    policy_types: Some(vec!["Ingress".into()]),
                    ingress: Some(ingress),
                    egress: None,
                }),
            });
            let mut egress = vec![NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespaces_named(outbound.iter().cloned())),
                    pod_selector: Some(exposed()),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: None,
            }];
            egress.extend(segment.spec.egress.iter().enumerate().filter_map(|(i, r)| {
                let (to, ports) = external(r, &format!("spec.egress[{i}]"), cluster)?;
                Some(NetworkPolicyEgressRule { to: Some(to), ports })
            }));
            out.push(NetworkPolicy {
                metadata: meta(segment, &tenancy, egress_name(&seg), &ns),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(LabelSelector::default()),
                    policy_types: Some(vec!["Egress".into()]),
                    ingress: None,
                    egress: Some(egress),
                }),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::fixtures::segment;
    use crate::tenancy::fixtures::TenancyBuilder;
    use commons_crds::common::{Classification, Sector};

    fn requesting(name: &str, segments: &[&str], sector: Sector) -> Arc<Tenancy> {
        let mut t = TenancyBuilder::new(name).build();
        t.spec.network_segments = segments.iter().map(|s| (*s).to_owned()).collect();
        t.spec.organisation.sector = sector;
        Arc::new(t)
    }

    #[test]
    fn members_peers_and_policies() {
        let psn = Arc::new(segment("psn", Classification::Official, &[Sector::LocalGovernment], &[], &[]));
        let mut hscn = segment("hscn", Classification::Official, &[Sector::Health], &[], &[]);
        hscn.spec.peers = vec!["psn".into()];
        let hscn = Arc::new(hscn);
        let segments = vec![psn.clone(), hscn.clone()];
        let tenancies = vec![
            requesting("council-a", &["psn"], Sector::LocalGovernment),
            requesting("council-b", &["psn"], Sector::LocalGovernment),
            requesting("trust", &["hscn", "psn"], Sector::Health),
        ];
        let m = membership(&psn, &tenancies);
        assert_eq!(m.members, ["council-a", "council-b"]);
        assert_eq!(m.refused[0].tenancy, "trust");
        assert_eq!(m.refused[0].reason, "SectorNotAdmitted");
        // hscn lists psn as a peer: psn's members reach hscn's members, not the other way.
        assert_eq!(
            reach_in(&hscn, &segments, &tenancies).into_iter().collect::<Vec<_>>(),
            ["council-a", "council-b", "trust"]
        );
        assert_eq!(
            reach_out(&psn, &segments, &tenancies).into_iter().collect::<Vec<_>>(),
            ["council-a", "council-b", "trust"]
        );
        assert_eq!(reach_out(&hscn, &segments, &tenancies).into_iter().collect::<Vec<_>>(), ["trust"]);

        let ps = policies(&psn, &segments, &tenancies, |_, _| true, &[]);
        assert_eq!(ps.len(), 4, "two policies in the one namespace of each of two members");
        let ingress = ps
            .iter()
            .find(|p| {
                p.namespace().as_deref() == Some("council-a-main")
                    && p.name_any() == "commons-segment-psn-ingress"
            })
            .unwrap();
        let spec = ingress.spec.clone().unwrap();
        assert_eq!(
            spec.pod_selector.unwrap().match_expressions.unwrap()[0].values.clone().unwrap(),
            ["segment", "public"]
        );
        let from = spec.ingress.unwrap()[0].from.clone().unwrap();
        let by = from[0].namespace_selector.clone().unwrap().match_expressions.unwrap()[0].clone();
        assert_eq!(by.key, "kubernetes.io/metadata.name", "peers by immutable name, never by a label");
        assert_eq!(by.values.unwrap(), ["council-a-main", "council-b-main"]);
        // A member's namespace that is not (yet) its own is no peer.
        let ps = policies(&psn, &segments, &tenancies, |_, ns| ns != "council-b-main", &[]);
        let from = ps[0].spec.clone().unwrap().ingress.unwrap()[0].from.clone().unwrap();
        assert_eq!(
            from[0].namespace_selector.clone().unwrap().match_expressions.unwrap()[0].values.clone().unwrap(),
            ["council-a-main"]
        );
        assert_eq!(ingress.owner_references()[0].kind, "NetworkSegment");
        // Namespaces that do not exist get nothing.
        assert!(policies(&psn, &segments, &tenancies, |_, _| false, &[]).is_empty());
    }

    #[test]
    fn external_ranges_become_ip_blocks_with_ports() {
        let mut psn = segment("psn", Classification::Official, &[], &[], &[]);
        psn.spec.egress = vec![serde_json::from_value(serde_json::json!({"cidr": "51.0.0.0/8", "except": ["51.1.0.0/16"], "ports": [{"port": 443}, {"protocol": "UDP", "port": 5000, "endPort": 5010}]})).unwrap()];
        let tenancies = vec![requesting("council", &["psn"], Sector::LocalGovernment)];
        let ps = policies(&psn, &[Arc::new(psn.clone())], &tenancies, |_, _| true, &[]);
        let egress = ps
            .iter()
            .find(|p| p.name_any().ends_with("-egress"))
            .unwrap()
            .spec
            .clone()
            .unwrap()
            .egress
            .unwrap();
        let block = egress[1].to.clone().unwrap()[0].ip_block.clone().unwrap();
        assert_eq!(
            (block.cidr.as_str(), block.except.unwrap()),
            ("51.0.0.0/8", vec!["51.1.0.0/16".to_owned()])
        );
        let ports = egress[1].ports.clone().unwrap();
        assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
        assert_eq!((ports[1].protocol.as_deref(), ports[1].end_port), (Some("UDP"), Some(5010)));
    }
}

//! One NetworkPolicy: its effective policy types, the pods it selects and the peers its rules
//! name.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};

use super::Peer;
use super::cidr::ip_block_contains;
use super::selector::{DEFAULT_NAMESPACE, matches_namespace, matches_pod, pod_namespace};

/// A direction of traffic as seen from a selected pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Traffic into the pod (`ingress` rules, `from` peers).
    Ingress,
    /// Traffic out of the pod (`egress` rules, `to` peers).
    Egress,
}

impl Direction {
    /// The name used in `policyTypes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }
}

/// The namespace of a policy (`default` when unset).
pub fn policy_namespace(policy: &NetworkPolicy) -> &str {
    policy.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

/// Whether the policy applies to `direction`, by its effective `policyTypes`.
///
/// When `policyTypes` is unset or empty it defaults as the apiserver defaults it: `Ingress`
/// always, plus `Egress` when the policy has at least one egress rule (an absent or empty
/// `egress` list does not count).
/// A policy without a spec reads as the empty spec, which affects ingress only.
pub fn affects(policy: &NetworkPolicy, direction: Direction) -> bool {
    let Some(spec) = policy.spec.as_ref() else { return direction == Direction::Ingress };
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == direction.as_str()),
        _ => match direction {
            Direction::Ingress => true,
            Direction::Egress => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    }
}

/// Whether the policy selects `pod`: same namespace, and its `podSelector` (empty when unset)
/// matches the pod's labels.
pub fn selects(policy: &NetworkPolicy, pod: &Pod) -> bool {
    policy_namespace(policy) == pod_namespace(pod)
        && policy.spec.as_ref().and_then(|s| s.pod_selector.as_ref()).is_none_or(|sel| matches_pod(sel, pod))
}

/// Whether a rule's peer list (`from` or `to`) admits `peer`: an absent or empty list admits
/// every peer, pods and external addresses alike; otherwise any one entry must match.
pub fn peers_admit(
    peers: Option<&[NetworkPolicyPeer]>,
    policy_namespace: &str,
    peer: Peer<'_>,
    namespaces: &[Namespace],
) -> bool {
    match peers {
        None | Some([]) => true,
        Some(entries) => entries.iter().any(|e| peer_matches(e, policy_namespace, peer, namespaces)),
    }
}

/// Whether one peer entry matches `peer`.
///
/// - A pod is matched by the selectors: `podSelector` alone selects pods in the policy's
///   namespace, `namespaceSelector` alone every pod of the matching namespaces, both together the
///   pods matching `podSelector` inside the namespaces matching `namespaceSelector`; or by an
///   `ipBlock` covering one of its addresses (network plugins differ on whether that applies to
///   pods: counting it never under-reports).
/// - An external address is matched by `ipBlock` only.
/// - An entry with nothing set (rejected by the apiserver) matches nothing.
pub fn peer_matches(
    entry: &NetworkPolicyPeer,
    policy_namespace: &str,
    peer: Peer<'_>,
    namespaces: &[Namespace],
) -> bool {
    match peer {
        Peer::External(ip) => entry.ip_block.as_ref().is_some_and(|b| ip_block_contains(b, ip)),
        Peer::Pod(pod) => {
            if let Some(block) = &entry.ip_block {
                return pod_ips(pod).any(|ip| ip_block_contains(block, ip));
            }
            if entry.pod_selector.is_none() && entry.namespace_selector.is_none() {
                return false;
            }
            let namespace = pod_namespace(pod);
            let namespace_ok = match &entry.namespace_selector {
                Some(sel) => matches_namespace(sel, namespaces, namespace),
                None => namespace == policy_namespace,
            };
            namespace_ok && entry.pod_selector.as_ref().is_none_or(|sel| matches_pod(sel, pod))
        }
    }
}

/// The addresses a pod has (`status.podIP` and `status.podIPs`); none before it is given one.
fn pod_ips(pod: &Pod) -> impl Iterator<Item = std::net::IpAddr> + '_ {
    let status = pod.status.as_ref();
    let single = status.and_then(|s| s.pod_ip.as_deref());
    let listed = status.and_then(|s| s.pod_ips.as_ref()).into_iter().flatten().map(|p| p.ip.as_str());
    single.into_iter().chain(listed).filter_map(|ip| ip.parse().ok())
}

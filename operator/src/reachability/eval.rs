//! Evaluation of traffic between two peers against every policy of a snapshot.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::policy::{Direction, affects, peers_admit, policy_namespace, selects};
use super::ports::{PROTOCOLS, declared_ports, mentioned, rule_admits};
use super::selector::pod_namespace;
use super::{Peer, Port, Snapshot};

/// The port number that stands for "any other port" when [`Snapshot::reachable`] tries ports: a
/// rule without ports admits it like any other number.
pub const REPRESENTATIVE_PORT: u16 = 1;

/// Whether a pod is a network endpoint: every phase except `Succeeded` and `Failed` (so
/// `Pending` and unscheduled pods count).
pub fn is_live(pod: &Pod) -> bool {
    !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Whether two pod references are the same pod: the same object, or the same namespace and name.
pub fn same_pod(a: &Pod, b: &Pod) -> bool {
    std::ptr::eq(a, b)
        || (a.metadata.name.is_some()
            && a.metadata.name == b.metadata.name
            && pod_namespace(a) == pod_namespace(b))
}

fn peer_is_live(peer: Peer<'_>) -> bool {
    match peer {
        Peer::Pod(pod) => is_live(pod),
        Peer::External(_) => true,
    }
}

impl Snapshot {
    /// The pods that are network endpoints (see [`is_live`]).
    pub fn live_pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(|p| is_live(p))
    }

    /// The policies that select `pod` (same namespace, matching `podSelector`) and affect
    /// `direction` by their effective `policyTypes`.
    pub fn selecting<'s>(
        &'s self,
        pod: &'s Pod,
        direction: Direction,
    ) -> impl Iterator<Item = &'s NetworkPolicy> {
        self.policies.iter().filter(move |p| selects(p, pod) && affects(p, direction))
    }

    /// Whether `pod` is isolated for `direction`: some policy selects it for that direction.
    pub fn isolated(&self, pod: &Pod, direction: Direction) -> bool {
        self.selecting(pod, direction).next().is_some()
    }

    /// Whether the ingress side admits traffic from `from` into `to` on `port`: `to` is not
    /// isolated for ingress, or some ingress rule of a policy selecting it admits both the peer
    /// and the port (the union over policies and rules).
    pub fn ingress_allows(&self, from: Peer<'_>, to: &Pod, port: &Port) -> bool {
        let mut policies = self.selecting(to, Direction::Ingress).peekable();
        if policies.peek().is_none() {
            return true;
        }
        policies.any(|policy| {
            let namespace = policy_namespace(policy);
            let rules = policy.spec.as_ref().and_then(|s| s.ingress.as_deref()).unwrap_or_default();
            rules.iter().any(|rule| {
                peers_admit(rule.from.as_deref(), namespace, from, &self.namespaces)
                    && rule_admits(rule.ports.as_deref(), port, Some(to))
            })
        })
    }

    /// Whether the egress side admits traffic from `from` to `to` on `port`: `from` is not
    /// isolated for egress, or some egress rule of a policy selecting it admits both the peer
    /// and the port (the union over policies and rules).
    pub fn egress_allows(&self, from: &Pod, to: Peer<'_>, port: &Port) -> bool {
        let mut policies = self.selecting(from, Direction::Egress).peekable();
        if policies.peek().is_none() {
            return true;
        }
        let destination = match to {
            Peer::Pod(pod) => Some(pod),
            Peer::External(_) => None,
        };
        policies.any(|policy| {
            let namespace = policy_namespace(policy);
            let rules = policy.spec.as_ref().and_then(|s| s.egress.as_deref()).unwrap_or_default();
            rules.iter().any(|rule| {
                peers_admit(rule.to.as_deref(), namespace, to, &self.namespaces)
                    && rule_admits(rule.ports.as_deref(), port, destination)
            })
        })
    }

    /// Whether traffic from `from` to `to` on `port` is allowed: egress of the source side (when
    /// `from` is a pod) AND ingress of the destination side (when `to` is a pod).
    ///
    /// A pod always reaches itself. A `Succeeded` or `Failed` pod neither sends nor receives.
    /// Between two external addresses no policy applies, so traffic is allowed.
    pub fn allowed(&self, from: Peer<'_>, to: Peer<'_>, port: &Port) -> bool {
        if !peer_is_live(from) || !peer_is_live(to) {
            return false;
        }
        if let (Peer::Pod(a), Peer::Pod(b)) = (from, to)
            && same_pod(a, b)
        {
            return true;
        }
        let egress = match from {
            Peer::Pod(pod) => self.egress_allows(pod, to, port),
            Peer::External(_) => true,
        };
        egress
            && match to {
                Peer::Pod(pod) => self.ingress_allows(from, pod, port),
                Peer::External(_) => true,
            }
    }

    /// The ports [`Snapshot::reachable`] tries, sorted: every protocol (TCP, UDP, SCTP and any
    /// other named) crossed with every port number of interest, which are the destination pod's
    /// declared container ports, the numbers (range starts and ends) named by the ingress rules
    /// of policies selecting the destination and by the egress rules of policies selecting the
    /// source, and [`REPRESENTATIVE_PORT`] for rules that admit every port.
    ///
    /// Trying these is the same as trying every port: the allowed ports of each side are a union
    /// of ranges (or all ports), so if the two sides share a port they share the start of a range
    /// or, when both admit all ports, any port at all.
    pub fn candidate_ports(&self, from: Peer<'_>, to: Peer<'_>) -> Vec<Port> {
        let mut named = BTreeSet::new();
        if let Peer::Pod(dst) = to {
            named.extend(declared_ports(dst));
            for policy in self.selecting(dst, Direction::Ingress) {
                let rules = policy.spec.as_ref().and_then(|s| s.ingress.as_deref()).unwrap_or_default();
                named.extend(rules.iter().flat_map(|r| mentioned(r.ports.as_deref())));
            }
        }
        if let Peer::Pod(src) = from {
            for policy in self.selecting(src, Direction::Egress) {
                let rules = policy.spec.as_ref().and_then(|s| s.egress.as_deref()).unwrap_or_default();
                named.extend(rules.iter().flat_map(|r| mentioned(r.ports.as_deref())));
            }
        }
        let numbers: BTreeSet<u16> =
            named.iter().map(|p| p.number).chain(std::iter::once(REPRESENTATIVE_PORT)).collect();
        let protocols: BTreeSet<String> =
            named.iter().map(|p| p.protocol.clone()).chain(PROTOCOLS.map(str::to_owned)).collect();
        protocols
            .iter()
            .flat_map(|protocol| numbers.iter().map(|&number| Port { protocol: protocol.clone(), number }))
            .collect()
    }

    /// Whether `from` can reach `to` on at least one port.
    ///
    /// The ports tried are those of [`Snapshot::candidate_ports`]: the destination pod's declared
    /// container ports, any port explicitly named in the policies that select either side (so a
    /// policy opening a port the container does not declare still counts), and a representative
    /// port standing for rules without ports. Declared container ports are informational in
    /// Kubernetes, so a destination that declares none is still reachable through a rule (or an
    /// absence of isolation) that admits every port. A pod always reaches itself.
    pub fn reachable(&self, from: Peer<'_>, to: Peer<'_>) -> bool {
        if !peer_is_live(from) || !peer_is_live(to) {
            return false;
        }
        if let (Peer::Pod(a), Peer::Pod(b)) = (from, to)
            && same_pod(a, b)
        {
            return true;
        }
        self.candidate_ports(from, to).iter().any(|port| self.allowed(from, to, port))
    }
}

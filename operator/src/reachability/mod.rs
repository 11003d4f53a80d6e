//! An auditor's evaluator of Kubernetes NetworkPolicy (`networking.k8s.io/v1`) as the API
//! defines it, computed from the objects read from a cluster: which pods and external addresses
//! can reach which, and reachability matrices between groups of pods. Pure functions, no I/O.
//!
//! # Semantics
//!
//! - A pod is isolated for ingress iff some NetworkPolicy in its own namespace selects it
//!   (`podSelector`, empty when unset) and has `Ingress` in its effective `policyTypes`; likewise
//!   for egress. Unset `policyTypes` default as the apiserver defaults them: `Ingress` always,
//!   `Egress` when the policy has at least one egress rule. A direction that is not isolated
//!   allows everything.
//! - An isolated direction allows traffic iff some rule of some selecting policy allows it. A
//!   rule without peers (absent or empty `from`/`to`) admits every peer, one without ports every
//!   port; a policy of that type without rules allows nothing.
//! - Peers: `podSelector` alone selects pods in the policy's namespace, `namespaceSelector` alone
//!   every pod of the matching namespaces, both in one entry the intersection; separate entries
//!   are alternatives. `{}` matches everything; an absent selector is not an empty one.
//! - Namespace labels are those of the Namespace objects, plus `kubernetes.io/metadata.name`,
//!   treated as present on every namespace (the apiserver sets it).
//! - Ports: numeric, ranges with `endPort`, or named (resolved on the destination pod's
//!   container ports of that name and protocol); protocol TCP when unset.
//!
//! # Simplifications
//!
//! - `ipBlock` matches external addresses ([`Peer::External`]), and also a pod whose
//!   `status.podIP` (or any of `status.podIPs`) lies inside it: whether cluster traffic is
//!   subject to `ipBlock` is implementation-defined (some network plugins match pod IPs, others
//!   do not), and counting it never under-reports, so a segment's `0.0.0.0/0` on a cluster whose
//!   pod network it covers shows as reaching every pod. A pod without an address yet is matched
//!   by selectors only. An external address that happens to be a pod IP is still treated as
//!   external.
//! - A pod always reaches itself (loopback traffic is never subject to policy).
//! - `Succeeded` and `Failed` pods are not endpoints: they belong to no matrix group and any
//!   traffic to or from one is not allowed. `Pending` pods, scheduled or not, count.
//! - Not modelled: traffic from a pod's own node (always allowed to ingress), `hostNetwork` pods
//!   (treated like any pod), Services and address translation, and policy APIs other than
//!   NetworkPolicy (cluster-wide or plugin-specific ones).
//! - Objects without a namespace are taken to be in `default`; a namespace without an object
//!   carries only `kubernetes.io/metadata.name`.
//! - Input the apiserver would reject never panics and is read narrowly: a malformed CIDR
//!   matches nothing (so a malformed `except` entry excludes nothing), an unknown selector
//!   operator matches nothing, a peer entry with no field set matches nothing, an `endPort` below
//!   its `port` is an empty range and an `endPort` beside a named port is ignored. Protocol names
//!   compare without regard to ASCII case.

pub mod cidr;
pub mod eval;
pub mod matrix;
pub mod policy;
pub mod ports;
pub mod selector;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;

pub use cidr::Cidr;
pub use eval::{REPRESENTATIVE_PORT, is_live, same_pod};
pub use matrix::{group_matrix, matrix_by, render, service_matrix};
pub use policy::Direction;

/// The objects read from a cluster that NetworkPolicy evaluation depends on.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every namespace (their labels feed `namespaceSelector`).
    pub namespaces: Vec<Namespace>,
    /// Every pod (terminated ones are ignored).
    pub pods: Vec<Pod>,
    /// Every NetworkPolicy, in any namespace.
    pub policies: Vec<NetworkPolicy>,
}

/// One end of a connection.
#[derive(Debug, Clone, Copy)]
pub enum Peer<'a> {
    /// A pod of the snapshot.
    Pod(&'a Pod),
    /// An address outside the cluster's pods, matched by `ipBlock` peers only.
    External(IpAddr),
}

/// A destination port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// `TCP`, `UDP` or `SCTP` (compared without regard to ASCII case; empty means TCP).
    pub protocol: String,
    /// The port number.
    pub number: u16,
}

impl Port {
    /// A TCP port.
    pub fn tcp(number: u16) -> Port {
        Port { protocol: "TCP".into(), number }
    }

    /// A UDP port.
    pub fn udp(number: u16) -> Port {
        Port { protocol: "UDP".into(), number }
    }

    /// An SCTP port.
    pub fn sctp(number: u16) -> Port {
        Port { protocol: "SCTP".into(), number }
    }
}

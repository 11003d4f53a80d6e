//! Ports: the `ports` of a NetworkPolicy rule, named ports and the ports a pod declares.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicyPort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Port;

/// The protocol assumed where none is given.
pub const DEFAULT_PROTOCOL: &str = "TCP";

/// The protocols NetworkPolicy knows.
pub const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

/// Whether two protocol names are the same protocol: compared without regard to ASCII case,
/// an empty name meaning TCP.
pub fn same_protocol(a: &str, b: &str) -> bool {
    let norm = |p: &str| if p.is_empty() { DEFAULT_PROTOCOL.to_owned() } else { p.to_ascii_uppercase() };
    norm(a) == norm(b)
}

/// Whether one entry of a rule's `ports` admits `port` towards `destination`.
///
/// - No `port`: every port of the entry's protocol (TCP when unset).
/// - A number: that port, or the range `[port, endPort]` when `endPort` is set (an `endPort`
///   below `port` is an empty range).
/// - A name: any container port of that name and protocol declared by the `destination` pod; it
///   matches nothing when the destination is not a pod. An `endPort` next to a name (rejected by
///   the apiserver) is ignored.
pub fn entry_admits(entry: &NetworkPolicyPort, port: &Port, destination: Option<&Pod>) -> bool {
    let protocol = entry.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL);
    if !same_protocol(protocol, &port.protocol) {
        return false;
    }
    let number = i32::from(port.number);
    match &entry.port {
        None => true,
        Some(IntOrString::Int(start)) => {
            let end = entry.end_port.unwrap_or(*start);
            *start <= number && number <= end
        }
        Some(IntOrString::String(name)) => destination.is_some_and(|pod| {
            declared_ports_named(pod, name)
                .any(|p| p.number == port.number && same_protocol(&p.protocol, &port.protocol))
        }),
    }
}

/// Whether a rule's `ports` admit `port`: an absent or empty list admits every port.
pub fn rule_admits(ports: Option<&[NetworkPolicyPort]>, port: &Port, destination: Option<&Pod>) -> bool {
    match ports {
        None | Some([]) => true,
        Some(entries) => entries.iter().any(|e| entry_admits(e, port, destination)),
    }
}

/// The ports a pod declares in its containers (init containers included, which covers
/// sidecars), with their protocols (TCP when unset). Out-of-range numbers are skipped.
pub fn declared_ports(pod: &Pod) -> Vec<Port> {
    declared(pod).map(|(_, port)| port).collect()
}

fn declared_ports_named<'a>(pod: &'a Pod, name: &'a str) -> impl Iterator<Item = Port> + 'a {
    declared(pod).filter(move |(n, _)| *n == Some(name)).map(|(_, port)| port)
}

fn declared(pod: &Pod) -> impl Iterator<Item = (Option<&str>, Port)> {
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let init = spec.and_then(|s| s.init_containers.as_deref()).unwrap_or_default();
    containers.iter().chain(init).flat_map(|c| c.ports.iter().flatten()).filter_map(|p| {
        let number = u16::try_from(p.container_port).ok()?;
        let protocol = p.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL).to_ascii_uppercase();
        Some((p.name.as_deref(), Port { protocol, number }))
    })
}

/// The port numbers a rule's `ports` mention explicitly (the start and the end of a range),
/// within `0..=65535`, each with the entry's protocol.
pub fn mentioned(ports: Option<&[NetworkPolicyPort]>) -> impl Iterator<Item = Port> + '_ {
    ports.unwrap_or_default().iter().flat_map(|e| {
        let protocol = e.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL).to_ascii_uppercase();
        let start = match e.port {
            Some(IntOrString::Int(n)) => Some(n),
            _ => None,
        };
        let end = start.and(e.end_port);
        [start, end]
            .into_iter()
            .flatten()
            .filter_map(|n| u16::try_from(n).ok())
            .map(move |number| Port { protocol: protocol.clone(), number })
    })
}

//! Case-by-case tests of the evaluator against the NetworkPolicy semantics.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{Value, json};

use super::*;

fn ns(name: &str, labels: Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

fn pod_full(namespace: &str, name: &str, labels: Value, ports: Value, phase: &str, ip: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "example", "ports": ports}]},
        "status": {"phase": phase, "podIP": ip},
    }))
    .unwrap()
}

fn pod(namespace: &str, name: &str, labels: Value) -> Pod {
    pod_full(namespace, name, labels, json!([]), "Running", "10.244.0.10")
}

fn netpol(namespace: &str, name: &str, spec: Value) -> NetworkPolicy {
    serde_json::from_value(json!({"metadata": {"namespace": namespace, "name": name}, "spec": spec})).unwrap()
}

/// A peer from `namespace/name` (a pod of the snapshot) or an IP address.
fn peer<'a>(snapshot: &'a Snapshot, text: &str) -> Peer<'a> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Peer::External(ip);
    }
    let (namespace, name) = text.split_once('/').unwrap();
    let pod = snapshot
        .pods
        .iter()
        .find(|p| {
            p.metadata.namespace.as_deref() == Some(namespace) && p.metadata.name.as_deref() == Some(name)
        })
        .unwrap_or_else(|| panic!("no pod {text}"));
    Peer::Pod(pod)
}

/// (from, to, port, expected allowed)
type Case = (&'static str, &'static str, Port, bool);

fn check(snapshot: &Snapshot, title: &str, cases: &[Case]) {
    let failures: Vec<String> = cases
        .iter()
        .filter(|(from, to, port, want)| {
            snapshot.allowed(peer(snapshot, from), peer(snapshot, to), port) != *want
        })
        .map(|(from, to, port, want)| {
            format!("{title}: {from} -> {to} {}/{} expected {want}", port.protocol, port.number)
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (from, to, expected reachable)
fn check_reachable(snapshot: &Snapshot, title: &str, cases: &[(&str, &str, bool)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter(|(from, to, want)| snapshot.reachable(peer(snapshot, from), peer(snapshot, to)) != *want)
        .map(|(from, to, want)| format!("{title}: {from} -> {to} expected reachable={want}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn two_namespaces(policies: Vec<NetworkPolicy>) -> Snapshot {
    Snapshot {
        namespaces: vec![ns("app", json!({})), ns("other", json!({}))],
        pods: vec![
            pod("app", "a", json!({"role": "a"})),
            pod("app", "b", json!({"role": "b"})),
            pod("other", "c", json!({"role": "c"})),
        ],
        policies,
    }
}

#[test]
fn default_allow_without_policies() {
    let s = two_namespaces(vec![]);
    check(
        &s,
        "no policies",
        &[
            ("app/a", "app/b", Port::tcp(80), true),
            ("app/a", "other/c", Port::udp(53), true),
            ("other/c", "app/a", Port::sctp(9), true),
            ("203.0.113.7", "app/a", Port::tcp(443), true),
            ("app/a", "203.0.113.7", Port::tcp(443), true),
            ("203.0.113.7", "198.51.100.1", Port::tcp(443), true),
        ],
    );
}

#[test]
fn default_deny_ingress() {
    let s =
        two_namespaces(vec![netpol("app", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]}))]);
    check(
        &s,
        "default deny ingress",
        &[
            ("app/a", "app/b", Port::tcp(80), false),
            ("other/c", "app/a", Port::tcp(80), false),
            ("203.0.113.7", "app/a", Port::tcp(80), false),
            ("app/a", "other/c", Port::tcp(80), true),
            ("app/a", "203.0.113.7", Port::tcp(80), true),
            ("app/a", "app/a", Port::tcp(80), true),
        ],
    );
}

#[test]
fn default_deny_egress() {
    let s =
        two_namespaces(vec![netpol("app", "deny", json!({"podSelector": {}, "policyTypes": ["Egress"]}))]);
    check(
        &s,
        "default deny egress",
        &[
            ("app/a", "app/b", Port::tcp(80), false),
            ("app/a", "other/c", Port::tcp(80), false),
            ("app/a", "203.0.113.7", Port::udp(53), false),
            ("other/c", "app/a", Port::tcp(80), true),
            ("203.0.113.7", "app/b", Port::tcp(80), true),
            ("app/b", "app/b", Port::tcp(80), true),
        ],
    );
}

#[test]
fn allow_all_ingress() {
    for (title, rule) in
        [("ingress [{}]", json!({})), ("empty from and ports", json!({"from": [], "ports": []}))]
    {
        let s = two_namespaces(vec![
            netpol("app", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]})),
            netpol("app", "allow", json!({"podSelector": {}, "ingress": [rule]})),
        ]);
        check(
            &s,
            title,
            &[
                ("other/c", "app/a", Port::tcp(80), true),
                ("other/c", "app/a", Port::udp(5353), true),
                ("203.0.113.7", "app/b", Port::sctp(7), true),
            ],
        );
    }
}

/// The example policy of the Kubernetes NetworkPolicy documentation.
fn docs_example() -> Snapshot {
    Snapshot {
        namespaces: vec![
            ns("default", json!({})),
            ns("proj", json!({"project": "myproject"})),
            ns("elsewhere", json!({"project": "theirs"})),
        ],
        pods: vec![
            pod("default", "db", json!({"role": "db"})),
            pod("default", "frontend", json!({"role": "frontend"})),
            pod("default", "worker", json!({"role": "worker"})),
            pod("proj", "anything", json!({"app": "x"})),
            pod("elsewhere", "frontend", json!({"role": "frontend"})),
        ],
        policies: vec![netpol(
            "default",
            "test-network-policy",
            json!({
                "podSelector": {"matchLabels": {"role": "db"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{
                    "from": [
                        {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                        {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                        {"podSelector": {"matchLabels": {"role": "frontend"}}},
                    ],
                    "ports": [{"protocol": "TCP", "port": 6379}],
                }],
                "egress": [{
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                    "ports": [{"protocol": "TCP", "port": 5978}],
                }],
            }),
        )],
    }
}

#[test]
fn kubernetes_docs_example() {
    let s = docs_example();
    check(
        &s,
        "docs example",
        &[
            ("default/frontend", "default/db", Port::tcp(6379), true),
            ("default/frontend", "default/db", Port::tcp(6380), false),
            ("default/frontend", "default/db", Port::udp(6379), false),
            ("default/worker", "default/db", Port::tcp(6379), false),
            ("proj/anything", "default/db", Port::tcp(6379), true),
            ("elsewhere/frontend", "default/db", Port::tcp(6379), false),
            ("172.17.0.5", "default/db", Port::tcp(6379), true),
            ("172.17.1.5", "default/db", Port::tcp(6379), false),
            ("172.18.0.5", "default/db", Port::tcp(6379), false),
            ("default/db", "10.0.0.5", Port::tcp(5978), true),
            ("default/db", "10.0.0.5", Port::tcp(80), false),
            ("default/db", "10.0.0.5", Port::udp(5978), false),
            ("default/db", "10.0.1.5", Port::tcp(5978), false),
            ("default/db", "default/frontend", Port::tcp(5978), false),
            // Pods the policy does not select stay open both ways.
            ("default/worker", "default/frontend", Port::tcp(80), true),
            ("default/frontend", "203.0.113.1", Port::tcp(443), true),
        ],
    );
    check_reachable(
        &s,
        "docs example",
        &[
            ("default/frontend", "default/db", true),
            ("default/worker", "default/db", false),
            ("default/db", "10.0.0.9", true),
            ("default/db", "192.0.2.1", false),
            ("default/db", "default/worker", false),
        ],
    );
}

#[test]
fn namespace_and_pod_selector_and_versus_or() {
    let base = |from: Value| Snapshot {
        namespaces: vec![
            ns("alice", json!({"user": "alice"})),
            ns("bob", json!({"user": "bob"})),
            ns("db", json!({})),
        ],
        pods: vec![
            pod("db", "server", json!({"app": "db"})),
            pod("db", "client", json!({"role": "client"})),
            pod("alice", "client", json!({"role": "client"})),
            pod("alice", "batch", json!({"role": "batch"})),
            pod("bob", "client", json!({"role": "client"})),
        ],
        policies: vec![netpol(
            "db",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": from}]}),
        )],
    };
    let and = base(json!([{
        "namespaceSelector": {"matchLabels": {"user": "alice"}},
        "podSelector": {"matchLabels": {"role": "client"}},
    }]));
    check(
        &and,
        "AND",
        &[
            ("alice/client", "db/server", Port::tcp(5432), true),
            ("alice/batch", "db/server", Port::tcp(5432), false),
            ("bob/client", "db/server", Port::tcp(5432), false),
            ("db/client", "db/server", Port::tcp(5432), false),
        ],
    );
    let or = base(json!([
        {"namespaceSelector": {"matchLabels": {"user": "alice"}}},
        {"podSelector": {"matchLabels": {"role": "client"}}},
    ]));
    check(
        &or,
        "OR",
        &[
            ("alice/client", "db/server", Port::tcp(5432), true),
            ("alice/batch", "db/server", Port::tcp(5432), true),
            // podSelector alone means the policy's own namespace.
            ("db/client", "db/server", Port::tcp(5432), true),
            ("bob/client", "db/server", Port::tcp(5432), false),
        ],
    );
}

#[test]
fn empty_versus_missing_selectors() {
    let with = |from: Value| Snapshot {
        namespaces: vec![ns("app", json!({})), ns("other", json!({}))],
        pods: vec![pod("app", "a", json!({})), pod("app", "b", json!({})), pod("other", "c", json!({}))],
        policies: vec![netpol("app", "p", json!({"ingress": [{"from": from}]}))],
    };
    let cases: &[(&str, Value, bool, bool, bool)] = &[
        // (title, from, same namespace allowed, other namespace allowed, external allowed)
        ("namespaceSelector {}", json!([{"namespaceSelector": {}}]), true, true, false),
        ("podSelector {}", json!([{"podSelector": {}}]), true, false, false),
        ("both {}", json!([{"podSelector": {}, "namespaceSelector": {}}]), true, true, false),
        ("peer with nothing set", json!([{}]), false, false, false),
        // Pods have addresses in 10.244.0.0/16: a block covering them is counted as reaching them.
        ("ipBlock everything", json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}]), true, true, true),
        (
            "ipBlock everything but the pod network",
            json!([{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/16"]}}]),
            false,
            false,
            true,
        ),
        ("ipBlock elsewhere", json!([{"ipBlock": {"cidr": "198.51.100.0/24"}}]), false, false, true),
    ];
    for (title, from, same, other, external) in cases {
        let s = with(from.clone());
        check(
            &s,
            title,
            &[
                ("app/b", "app/a", Port::tcp(80), *same),
                ("other/c", "app/a", Port::tcp(80), *other),
                ("198.51.100.4", "app/a", Port::tcp(80), *external),
            ],
        );
    }
}

#[test]
fn match_expressions_in_peers() {
    let s = Snapshot {
        namespaces: vec![
            ns("prod", json!({"env": "prod"})),
            ns("staging", json!({"env": "staging"})),
            ns("dev", json!({"env": "dev"})),
            ns("bare", json!({})),
            ns("target", json!({})),
        ],
        pods: vec![
            pod("target", "t", json!({"app": "t"})),
            pod("prod", "p", json!({"tier": "web"})),
            pod("prod", "q", json!({"tier": "web", "legacy": "true"})),
            pod("staging", "s", json!({"tier": "web"})),
            pod("dev", "d", json!({"tier": "web"})),
            pod("bare", "b", json!({"tier": "web"})),
            pod("bare", "n", json!({})),
        ],
        policies: vec![netpol(
            "target",
            "p",
            json!({"ingress": [{"from": [{
                "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]},
                "podSelector": {"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web", "api"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ]},
            }, {
                "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]},
                "podSelector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
            }]}]}),
        )],
    };
    check(
        &s,
        "matchExpressions",
        &[
            ("prod/p", "target/t", Port::tcp(80), true),
            ("prod/q", "target/t", Port::tcp(80), false),
            ("staging/s", "target/t", Port::tcp(80), true),
            ("dev/d", "target/t", Port::tcp(80), false),
            // NotIn matches a namespace without the key.
            ("bare/b", "target/t", Port::tcp(80), true),
            // Exists does not.
            ("bare/n", "target/t", Port::tcp(80), false),
        ],
    );
}

#[test]
fn named_ports() {
    let s = Snapshot {
        namespaces: vec![ns("app", json!({}))],
        pods: vec![
            pod_full(
                "app",
                "db",
                json!({"app": "db"}),
                json!([
                    {"name": "postgres", "containerPort": 5432},
                    {"name": "metrics", "containerPort": 9187},
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                ]),
                "Running",
                "10.244.0.2",
            ),
            pod_full(
                "app",
                "cache",
                json!({"app": "db"}),
                json!([{"name": "redis", "containerPort": 5432}]),
                "Running",
                "10.244.0.3",
            ),
            pod_full(
                "app",
                "web",
                json!({"app": "web"}),
                json!([{"name": "http", "containerPort": 8080}]),
                "Running",
                "10.244.0.4",
            ),
            pod("app", "client", json!({"app": "client"})),
        ],
        policies: vec![
            netpol(
                "app",
                "db",
                json!({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"ports": [
                    {"port": "postgres"},
                    {"port": "dns", "protocol": "UDP"},
                ]}]}),
            ),
            netpol(
                "app",
                "client",
                json!({
                    "podSelector": {"matchLabels": {"app": "client"}},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": [{"port": "http"}]}],
                }),
            ),
        ],
    };
    check(
        &s,
        "named ports",
        &[
            ("app/web", "app/db", Port::tcp(5432), true),
            ("app/web", "app/db", Port::tcp(9187), false),
            ("app/web", "app/db", Port::udp(5432), false),
            ("app/web", "app/db", Port::udp(53), true),
            ("app/web", "app/db", Port::tcp(53), false),
            // The same number under another name does not match.
            ("app/web", "app/cache", Port::tcp(5432), false),
            // A named egress port resolves on the destination pod.
            ("app/client", "app/web", Port::tcp(8080), true),
            ("app/client", "app/web", Port::tcp(8081), false),
            ("app/client", "203.0.113.3", Port::tcp(8080), false),
        ],
    );
    check_reachable(
        &s,
        "named ports",
        &[("app/web", "app/db", true), ("app/web", "app/cache", false), ("app/client", "203.0.113.3", false)],
    );
}

#[test]
fn end_port_ranges() {
    let s = two_namespaces(vec![
        netpol(
            "app",
            "range",
            json!({"podSelector": {"matchLabels": {"role": "a"}}, "ingress": [{"ports": [
                {"port": 32000, "endPort": 32768},
            ]}]}),
        ),
        netpol(
            "app",
            "backwards",
            json!({"podSelector": {"matchLabels": {"role": "b"}}, "ingress": [{"ports": [
                {"port": 9000, "endPort": 8000},
            ]}]}),
        ),
    ]);
    check(
        &s,
        "endPort",
        &[
            ("other/c", "app/a", Port::tcp(31999), false),
            ("other/c", "app/a", Port::tcp(32000), true),
            ("other/c", "app/a", Port::tcp(32500), true),
            ("other/c", "app/a", Port::tcp(32768), true),
            ("other/c", "app/a", Port::tcp(32769), false),
            ("other/c", "app/a", Port::udp(32500), false),
            ("other/c", "app/b", Port::tcp(8500), false),
            ("other/c", "app/b", Port::tcp(9000), false),
        ],
    );
    check_reachable(&s, "endPort", &[("other/c", "app/a", true), ("other/c", "app/b", false)]);
}

#[test]
fn udp_versus_tcp() {
    let s = Snapshot {
        namespaces: vec![ns("app", json!({}))],
        pods: vec![
            pod("app", "dns", json!({"role": "dns"})),
            pod("app", "sctp", json!({"role": "sctp"})),
            pod("app", "tcp", json!({"role": "tcp"})),
            pod("app", "c", json!({})),
        ],
        policies: vec![
            netpol(
                "app",
                "dns",
                json!({"podSelector": {"matchLabels": {"role": "dns"}}, "ingress": [{"ports": [
                    {"protocol": "UDP", "port": 53},
                ]}]}),
            ),
            netpol(
                "app",
                "sctp",
                json!({"podSelector": {"matchLabels": {"role": "sctp"}}, "ingress": [{"ports": [
                    {"protocol": "SCTP"},
                ]}]}),
            ),
            netpol(
                "app",
                "tcp",
                json!({"podSelector": {"matchLabels": {"role": "tcp"}}, "ingress": [{"ports": [{}]}]}),
            ),
        ],
    };
    check(
        &s,
        "protocols",
        &[
            ("app/c", "app/dns", Port::udp(53), true),
            ("app/c", "app/dns", Port::tcp(53), false),
            ("app/c", "app/dns", Port { protocol: "udp".into(), number: 53 }, true),
            ("app/c", "app/sctp", Port::sctp(3868), true),
            ("app/c", "app/sctp", Port::tcp(3868), false),
            // An entry without protocol or port means every TCP port.
            ("app/c", "app/tcp", Port::tcp(12345), true),
            ("app/c", "app/tcp", Port::udp(12345), false),
            ("app/c", "app/tcp", Port { protocol: String::new(), number: 1 }, true),
        ],
    );
}

#[test]
fn policies_in_another_namespace_do_not_select_local_pods() {
    let s = two_namespaces(vec![netpol(
        "other",
        "deny-all",
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    )]);
    check(
        &s,
        "foreign namespace",
        &[
            ("app/a", "app/b", Port::tcp(80), true),
            ("app/b", "app/a", Port::tcp(80), true),
            ("app/a", "other/c", Port::tcp(80), false),
            ("other/c", "app/a", Port::tcp(80), false),
        ],
    );
}

#[test]
fn egress_only_policy_leaves_ingress_open() {
    let s = two_namespaces(vec![netpol(
        "app",
        "egress",
        json!({
            "podSelector": {"matchLabels": {"role": "a"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"role": "b"}}}]}],
        }),
    )]);
    check(
        &s,
        "egress only",
        &[
            ("other/c", "app/a", Port::tcp(80), true),
            ("203.0.113.9", "app/a", Port::tcp(80), true),
            ("app/a", "app/b", Port::tcp(80), true),
            ("app/a", "other/c", Port::tcp(80), false),
            ("app/a", "203.0.113.9", Port::tcp(80), false),
        ],
    );
}

#[test]
fn default_policy_types() {
    // An egress section without policyTypes implies Ingress and Egress.
    let with_egress = two_namespaces(vec![netpol(
        "app",
        "p",
        json!({"podSelector": {"matchLabels": {"role": "a"}}, "egress": [{"to": [{"podSelector": {}}]}]}),
    )]);
    check(
        &with_egress,
        "implied Ingress and Egress",
        &[
            ("app/b", "app/a", Port::tcp(80), false),
            ("app/a", "app/b", Port::tcp(80), true),
            ("app/a", "other/c", Port::tcp(80), false),
        ],
    );
    // An empty egress list does not count as an egress section.
    let empty_egress = two_namespaces(vec![netpol(
        "app",
        "p",
        json!({"podSelector": {"matchLabels": {"role": "a"}}, "egress": []}),
    )]);
    check(
        &empty_egress,
        "empty egress",
        &[("app/b", "app/a", Port::tcp(80), false), ("app/a", "other/c", Port::tcp(80), true)],
    );
    // A policy without a podSelector selects every pod of its namespace.
    let no_selector = two_namespaces(vec![netpol("app", "p", json!({}))]);
    check(&no_selector, "no podSelector", &[("other/c", "app/b", Port::tcp(80), false)]);
    // A policy without a spec at all reads as the empty spec.
    let mut no_spec = two_namespaces(vec![netpol("app", "p", json!({}))]);
    no_spec.policies[0].spec = None;
    check(
        &no_spec,
        "no spec",
        &[("other/c", "app/b", Port::tcp(80), false), ("app/b", "other/c", Port::tcp(80), true)],
    );
}

#[test]
fn union_of_two_policies() {
    let s = two_namespaces(vec![
        netpol(
            "app",
            "from-b",
            json!({"podSelector": {"matchLabels": {"role": "a"}}, "ingress": [{
                "from": [{"podSelector": {"matchLabels": {"role": "b"}}}],
                "ports": [{"port": 80}],
            }]}),
        ),
        netpol(
            "app",
            "from-other",
            json!({"podSelector": {}, "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}],
                "ports": [{"port": 443}],
            }]}),
        ),
    ]);
    check(
        &s,
        "union",
        &[
            ("app/b", "app/a", Port::tcp(80), true),
            ("app/b", "app/a", Port::tcp(443), false),
            ("other/c", "app/a", Port::tcp(443), true),
            ("other/c", "app/a", Port::tcp(80), false),
            ("other/c", "app/b", Port::tcp(443), true),
            ("app/a", "app/b", Port::tcp(80), false),
        ],
    );
}

#[test]
fn ipv6_cidr() {
    let s = two_namespaces(vec![netpol(
        "app",
        "v6",
        json!({
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:bad::/48"]}}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "fd00::/8"}}], "ports": [{"port": 443}]}],
        }),
    )]);
    check(
        &s,
        "IPv6",
        &[
            ("2001:db8:1::5", "app/a", Port::tcp(80), true),
            ("2001:db8:bad::5", "app/a", Port::tcp(80), false),
            ("2001:db9::5", "app/a", Port::tcp(80), false),
            ("192.0.2.1", "app/a", Port::tcp(80), false),
            ("app/a", "fd12::1", Port::tcp(443), true),
            ("app/a", "fd12::1", Port::tcp(80), false),
            ("app/a", "fe80::1", Port::tcp(443), false),
        ],
    );
}

#[test]
fn ip_block_counts_pods_it_covers_and_malformed_cidr_matches_nothing() {
    let s = Snapshot {
        namespaces: vec![ns("app", json!({}))],
        pods: vec![
            pod_full("app", "a", json!({"role": "a"}), json!([]), "Running", "10.244.0.1"),
            pod_full("app", "b", json!({"role": "b"}), json!([]), "Running", "10.244.0.2"),
            pod_full("app", "c", json!({"role": "c"}), json!([]), "Running", "10.245.0.3"),
            pod_full("app", "unaddressed", json!({"role": "d"}), json!([]), "Pending", ""),
        ],
        policies: vec![netpol(
            "app",
            "p",
            json!({"podSelector": {"matchLabels": {"role": "a"}}, "ingress": [{"from": [
                {"ipBlock": {"cidr": "10.244.0.0/16"}},
                {"ipBlock": {"cidr": "not-a-cidr"}},
                {"ipBlock": {"cidr": "192.0.2.0/33"}},
            ]}]}),
        )],
    };
    check(
        &s,
        "ipBlock",
        &[
            // Covered by the block: counted (plugins that apply ipBlock to pods let it through).
            ("app/b", "app/a", Port::tcp(80), true),
            ("app/c", "app/a", Port::tcp(80), false),
            ("app/unaddressed", "app/a", Port::tcp(80), false),
            ("10.244.9.9", "app/a", Port::tcp(80), true),
            ("192.0.2.1", "app/a", Port::tcp(80), false),
        ],
    );
}

#[test]
fn self_and_terminated_pods() {
    let mut s = two_namespaces(vec![netpol(
        "app",
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    )]);
    s.pods.push(pod_full("other", "done", json!({}), json!([]), "Succeeded", ""));
    s.pods.push(pod_full("other", "crashed", json!({}), json!([]), "Failed", ""));
    s.pods.push(pod_full("other", "waiting", json!({}), json!([]), "Pending", ""));
    check(
        &s,
        "self and phases",
        &[
            ("app/a", "app/a", Port::tcp(1), true),
            ("other/c", "other/done", Port::tcp(80), false),
            ("other/crashed", "other/c", Port::tcp(80), false),
            ("other/c", "other/waiting", Port::tcp(80), true),
        ],
    );
    check_reachable(
        &s,
        "self and phases",
        &[
            ("app/a", "app/a", true),
            ("app/a", "app/b", false),
            ("other/c", "other/done", false),
            ("other/done", "other/done", false),
            ("other/c", "other/waiting", true),
        ],
    );
    assert_eq!(s.live_pods().count(), 4);
}

#[test]
fn reachable_tries_declared_policy_and_representative_ports() {
    let s = Snapshot {
        namespaces: vec![ns("app", json!({}))],
        pods: vec![
            pod_full(
                "app",
                "declares",
                json!({"role": "d"}),
                json!([{"containerPort": 8080}]),
                "Running",
                "",
            ),
            pod("app", "undeclared", json!({"role": "u"})),
            pod("app", "open", json!({"role": "o"})),
            pod("app", "src", json!({"role": "src"})),
            pod("app", "egress", json!({"role": "e"})),
        ],
        policies: vec![
            // Opens only 9090, which the container does not declare.
            netpol(
                "app",
                "d",
                json!({"podSelector": {"matchLabels": {"role": "d"}}, "ingress": [{"ports": [{"port": 9090}]}]}),
            ),
            // Opens a UDP range on a pod declaring nothing.
            netpol(
                "app",
                "u",
                json!({"podSelector": {"matchLabels": {"role": "u"}}, "ingress": [{"ports": [
                    {"protocol": "UDP", "port": 4000, "endPort": 4010},
                ]}]}),
            ),
            // Egress limited to TCP 7000-7100 anywhere.
            netpol(
                "app",
                "e",
                json!({
                    "podSelector": {"matchLabels": {"role": "e"}},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": [{"port": 7000, "endPort": 7100}]}],
                }),
            ),
        ],
    };
    check_reachable(
        &s,
        "reachable",
        &[
            ("app/src", "app/declares", true),
            ("app/src", "app/undeclared", true),
            ("app/src", "app/open", true),
            ("app/src", "198.51.100.1", true),
            ("app/egress", "198.51.100.1", true),
            ("app/egress", "app/open", true),
            // Egress only on TCP 7000-7100; the destination admits only 9090.
            ("app/egress", "app/declares", false),
            ("app/egress", "app/undeclared", false),
        ],
    );
    let candidates = s.candidate_ports(peer(&s, "app/src"), peer(&s, "app/declares"));
    for want in [Port::tcp(8080), Port::tcp(9090), Port::udp(9090), Port::tcp(REPRESENTATIVE_PORT)] {
        assert!(candidates.contains(&want), "{want:?} in {candidates:?}");
    }
}

/// Three tenancy namespaces across two tenancies with the baseline policy (same tenancy only,
/// plus DNS), a third tenancy without policies, and namespaces outside any tenancy.
fn tenancies() -> Snapshot {
    let baseline = |namespace: &str, tenancy: &str| {
        netpol(
            namespace,
            "commons-baseline",
            json!({
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"commons.dev/tenancy": tenancy}}}]}],
                "egress": [
                    {"to": [{"namespaceSelector": {"matchLabels": {"commons.dev/tenancy": tenancy}}}]},
                    {
                        "to": [{
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                ],
            }),
        )
    };
    Snapshot {
        namespaces: vec![
            ns("acme-web", json!({"commons.dev/tenancy": "acme"})),
            ns("acme-db", json!({"commons.dev/tenancy": "acme"})),
            ns("beta-app", json!({"commons.dev/tenancy": "beta"})),
            ns("gamma-app", json!({"commons.dev/tenancy": "gamma"})),
            ns("delta-app", json!({"commons.dev/tenancy": "delta"})),
            ns("kube-system", json!({})),
        ],
        pods: vec![
            pod("acme-web", "web", json!({"app": "web"})),
            pod("acme-db", "db", json!({"app": "db"})),
            pod("beta-app", "api", json!({"app": "api"})),
            pod("gamma-app", "job", json!({"app": "job"})),
            pod_full("delta-app", "finished", json!({}), json!([]), "Succeeded", ""),
            pod("kube-system", "coredns", json!({"k8s-app": "kube-dns"})),
        ],
        policies: vec![
            baseline("acme-web", "acme"),
            baseline("acme-db", "acme"),
            baseline("beta-app", "beta"),
            // beta also admits gamma.
            netpol(
                "beta-app",
                "from-gamma",
                json!({"podSelector": {}, "ingress": [{"from": [
                    {"namespaceSelector": {"matchLabels": {"commons.dev/tenancy": "gamma"}}},
                ]}]}),
            ),
        ],
    }
}

#[test]
fn group_matrix_over_tenancies() {
    let s = tenancies();
    let (names, m) = group_matrix(&s, "commons.dev/tenancy");
    assert_eq!(names, ["acme", "beta", "gamma"]);
    assert_eq!(
        m,
        vec![
            vec![true, false, false], // acme: own tenancy only (egress is baseline-limited)
            vec![false, true, false], // beta: own tenancy only
            vec![false, true, true],  // gamma: unrestricted egress, admitted by beta
        ]
    );
    check(
        &s,
        "tenancy DNS",
        &[
            ("acme-web/web", "kube-system/coredns", Port::udp(53), true),
            ("acme-web/web", "kube-system/coredns", Port::tcp(53), true),
            ("acme-web/web", "kube-system/coredns", Port::tcp(80), false),
            ("acme-web/web", "acme-db/db", Port::tcp(5432), true),
            ("kube-system/coredns", "acme-db/db", Port::tcp(5432), false),
        ],
    );
    let (by_namespace, _) = group_matrix(&s, "kubernetes.io/metadata.name");
    assert_eq!(by_namespace, ["acme-db", "acme-web", "beta-app", "gamma-app", "kube-system"]);
}

#[test]
fn service_matrix_per_pod_label() {
    let s = Snapshot {
        namespaces: vec![ns("shop", json!({}))],
        pods: vec![
            pod("shop", "web-1", json!({"svc": "web"})),
            pod("shop", "web-2", json!({"svc": "web"})),
            pod("shop", "api-1", json!({"svc": "api"})),
            pod("shop", "db-1", json!({"svc": "db"})),
            pod("shop", "unlabelled", json!({})),
        ],
        policies: vec![
            netpol(
                "shop",
                "db",
                json!({"podSelector": {"matchLabels": {"svc": "db"}}, "ingress": [{
                    "from": [{"podSelector": {"matchLabels": {"svc": "api"}}}],
                }]}),
            ),
            netpol(
                "shop",
                "api",
                json!({"podSelector": {"matchLabels": {"svc": "api"}}, "ingress": [{
                    "from": [{"podSelector": {"matchLabels": {"svc": "web"}}}],
                }]}),
            ),
        ],
    };
    let (names, m) = service_matrix(&s, "svc");
    assert_eq!(names, ["shop/api", "shop/db", "shop/web"]);
    assert_eq!(m, vec![vec![true, true, true], vec![false, true, true], vec![true, false, true]]);
}

#[test]
fn render_table() {
    let names: Vec<String> = ["acme", "beta", "gamma-long"].map(String::from).into();
    let m = vec![vec![true, false, false], vec![false, true, false], vec![false, true, true]];
    let expected = "\
from \\ to   acme  beta  gamma-long
acme        yes   -     -
beta        -     yes   -
gamma-long  -     yes   yes
";
    assert_eq!(render(&names, &m), expected);
    // A ragged matrix renders missing cells as "-" instead of panicking.
    assert_eq!(
        render(&names[..2], &[vec![true]]),
        "from \\ to  acme  beta\nacme       yes   -\nbeta       -     -\n"
    );
    assert_eq!(render(&[], &[]), "from \\ to\n");
}

use commons_crds::allowed::{Allowed, AllowedToleration, TaintEffect};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use serde_json::json;

use super::{Policy, Rule, added};

fn pod(spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "registry.example/app:1"}]);
    }
    serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
}

fn service(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": spec})).unwrap()
}

fn claim(class: Option<&str>) -> PersistentVolumeClaim {
    serde_json::from_value(json!({"metadata": {"name": "c"}, "spec": {"storageClassName": class}})).unwrap()
}

fn allowing(f: impl FnOnce(&mut Allowed)) -> Allowed {
    let mut allowed = Allowed::default();
    f(&mut allowed);
    allowed
}

/// A case: its name, the policy, the object's spec and the violations (rule, field) expected.
type Case<'a, P> = (&'a str, P, serde_json::Value, Vec<(Rule, &'a str)>);

fn rules(found: &[super::Violation]) -> Vec<(Rule, String)> {
    found.iter().map(|v| (v.rule, v.field.clone())).collect()
}

#[test]
fn pods_by_table() {
    let dedicated = |effect| AllowedToleration { key: "dedicated".into(), value: Some("gov".into()), effect };
    let cases: Vec<Case<Policy>> = vec![
        ("the defaults admit a plain pod", Policy::default(), json!({}), vec![]),
        (
            "a priority class not listed",
            Policy::default(),
            json!({"priorityClassName": "system-cluster-critical"}),
            vec![(Rule::PriorityClass, "spec.priorityClassName")],
        ),
        (
            "a listed priority class",
            Policy::new(Some(&allowing(|a| a.priority_classes = vec!["batch".into()])), None, None),
            json!({"priorityClassName": "batch"}),
            vec![],
        ),
        (
            "the cluster's global default class",
            Policy::new(None, None, Some("standard".into())),
            json!({"priorityClassName": "standard"}),
            vec![],
        ),
        (
            "Kubernetes' own node-condition tolerations",
            Policy::default(),
            json!({"tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]}),
            vec![],
        ),
        (
            "a toleration of every taint",
            Policy::new(Some(&allowing(|a| a.tolerations = vec![dedicated(None)])), None, None),
            json!({"tolerations": [{"operator": "Exists"}]}),
            vec![(Rule::Toleration, "spec.tolerations[0]")],
        ),
        (
            "an unlisted taint",
            Policy::default(),
            json!({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}),
            vec![(Rule::Toleration, "spec.tolerations[0]")],
        ),
        (
            "a listed taint with its value and effect",
            Policy::new(
                Some(&allowing(|a| a.tolerations = vec![dedicated(Some(TaintEffect::NoSchedule))])),
                None,
                None,
            ),
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gov", "effect": "NoSchedule"}]}),
            vec![],
        ),
        (
            "a listed taint with another value, or every value, or every effect",
            Policy::new(
                Some(&allowing(|a| a.tolerations = vec![dedicated(Some(TaintEffect::NoSchedule))])),
                None,
                None,
            ),
            json!({"tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "police", "effect": "NoSchedule"},
                {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "dedicated", "operator": "Equal", "value": "gov"}
            ]}),
            vec![
                (Rule::Toleration, "spec.tolerations[0]"),
                (Rule::Toleration, "spec.tolerations[1]"),
                (Rule::Toleration, "spec.tolerations[2]"),
            ],
        ),
        (
            "images from any registry when none is set",
            Policy::default(),
            json!({"containers": [{"name": "a", "image": "nginx"}]}),
            vec![],
        ),
        (
            "images from the operator's default registries",
            Policy::new(None, Some(&["registry.example".to_owned()]), None),
            json!({
                "initContainers": [{"name": "i", "image": "busybox"}],
                "containers": [{"name": "a", "image": "registry.example/app"}, {"name": "b", "image": "ghcr.io/x/y"}],
                "ephemeralContainers": [{"name": "d", "image": "registry.example/debug"}, {"name": "e", "image": "evil.example/shell"}],
                "volumes": [{"name": "v", "image": {"reference": "quay.io/data:1"}}]
            }),
            vec![
                (Rule::Registry, "spec.containers[1].image"),
                (Rule::Registry, "spec.initContainers[0].image"),
                (Rule::Registry, "spec.ephemeralContainers[1].image"),
                (Rule::Registry, "spec.volumes[0].image.reference"),
            ],
        ),
        (
            "the tenancy's registries override the operator's",
            Policy::new(
                Some(&allowing(|a| a.registries = Some(vec!["ghcr.io/leeds".into()]))),
                Some(&["registry.example".to_owned()]),
                None,
            ),
            json!({"containers": [{"name": "a", "image": "ghcr.io/leeds/app"}, {"name": "b", "image": "registry.example/app"}]}),
            vec![(Rule::Registry, "spec.containers[1].image")],
        ),
        (
            "an empty registry list admits no image",
            Policy::new(Some(&allowing(|a| a.registries = Some(vec![]))), None, None),
            json!({}),
            vec![(Rule::Registry, "spec.containers[0].image")],
        ),
    ];
    for (name, policy, spec, want) in cases {
        let found = policy.pod(&pod(spec));
        let want: Vec<(Rule, String)> = want.into_iter().map(|(r, f)| (r, f.to_owned())).collect();
        assert_eq!(rules(&found), want, "{name}: {found:?}");
    }
}

#[test]
fn services_by_table() {
    let node_ports = Policy::new(Some(&allowing(|a| a.node_ports = true)), None, None);
    let defaults = Policy::default();
    let cases: Vec<Case<&Policy>> = vec![
        ("ClusterIP", &defaults, json!({"type": "ClusterIP"}), vec![]),
        ("LoadBalancer (counted by the quota)", &defaults, json!({"type": "LoadBalancer"}), vec![]),
        ("NodePort by default", &defaults, json!({"type": "NodePort"}), vec![(Rule::NodePort, "spec.type")]),
        ("NodePort when allowed", &node_ports, json!({"type": "NodePort"}), vec![]),
        (
            "externalIPs, even with node ports allowed",
            &node_ports,
            json!({"type": "ClusterIP", "externalIPs": ["10.0.0.1", "10.0.0.2"]}),
            vec![(Rule::ExternalIps, "spec.externalIPs[0]"), (Rule::ExternalIps, "spec.externalIPs[1]")],
        ),
    ];
    for (name, policy, spec, want) in cases {
        let found = policy.service(&service(spec));
        let want: Vec<(Rule, String)> = want.into_iter().map(|(r, f)| (r, f.to_owned())).collect();
        assert_eq!(rules(&found), want, "{name}: {found:?}");
    }
}

#[test]
fn claims_by_table() {
    let fast_only =
        Policy::new(Some(&allowing(|a| a.storage_classes = Some(vec!["fast".into()]))), None, None);
    let defaults = Policy::default();
    for (name, policy, class, refused) in [
        ("any class when none is listed", &defaults, Some("anything"), false),
        ("a listed class", &fast_only, Some("fast"), false),
        ("an unlisted class", &fast_only, Some("premium"), true),
        ("no class (binds an existing volume only)", &fast_only, None, false),
        ("the empty class", &fast_only, Some(""), false),
    ] {
        let found = policy.claim(&claim(class));
        assert_eq!(!found.is_empty(), refused, "{name}: {found:?}");
        if refused {
            assert_eq!(found[0].field, "spec.storageClassName");
            assert!(found[0].reason.contains("spec.allowed.storageClasses"), "{}", found[0].reason);
        }
    }
}

#[test]
fn an_update_is_refused_only_for_what_it_adds() {
    let policy = Policy::new(None, Some(&["registry.example".to_owned()]), None);
    let old = pod(json!({"containers": [{"name": "a", "image": "nginx"}]}));
    let same = pod(json!({"containers": [{"name": "a", "image": "nginx"}]}));
    let changed =
        pod(json!({"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}));
    let before = policy.pod(&old);
    assert_eq!(before.len(), 1);
    assert!(added(policy.pod(&same), &before).is_empty());
    let new = added(policy.pod(&changed), &before);
    assert_eq!(rules(&new), vec![(Rule::Registry, "spec.containers[1].image".to_owned())]);
    assert!(new[0].to_string().contains("docker.io/library/busybox"), "{}", new[0]);
}

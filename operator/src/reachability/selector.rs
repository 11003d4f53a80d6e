//! Label selectors (`matchLabels` and `matchExpressions`) and the labels a namespace carries.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use commons_crds::labels::NAMESPACE_NAME;

/// The namespace assumed for an object whose `metadata.namespace` is unset.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Whether `selector` matches a label set, read through `label` (key to value).
///
/// `matchLabels` and every `matchExpressions` requirement must all hold, so an empty selector
/// (`{}`) matches everything. Operators: `In` (key present with one of the values), `NotIn` (key
/// absent or its value not among the values), `Exists`, `DoesNotExist`. An unknown operator
/// matches nothing, as such a selector would be rejected by the apiserver.
pub fn matches<'l>(selector: &LabelSelector, label: impl Fn(&str) -> Option<&'l str>) -> bool {
    let labels_hold =
        selector.match_labels.iter().flatten().all(|(k, v)| label(k).is_some_and(|have| have == v));
    labels_hold && selector.match_expressions.iter().flatten().all(|r| requirement_holds(r, &label))
}

fn requirement_holds<'l>(req: &LabelSelectorRequirement, label: &impl Fn(&str) -> Option<&'l str>) -> bool {
    let value = label(&req.key);
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Whether `selector` matches a map of labels.
pub fn matches_map(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    matches(selector, |k| labels.get(k).map(String::as_str))
}

/// The namespace a pod lives in (`default` when unset).
pub fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

/// Whether `selector` matches the pod's own labels.
pub fn matches_pod(selector: &LabelSelector, pod: &Pod) -> bool {
    matches(selector, |k| pod.metadata.labels.as_ref().and_then(|l| l.get(k)).map(String::as_str))
}

/// Whether `selector` matches the namespace called `name`, using the labels of its Namespace
/// object in `namespaces` plus `kubernetes.io/metadata.name=<name>`, which is treated as present
/// on every namespace. A namespace with no object carries only that label.
pub fn matches_namespace(selector: &LabelSelector, namespaces: &[Namespace], name: &str) -> bool {
    let labels = find_namespace(namespaces, name).and_then(|ns| ns.metadata.labels.as_ref());
    matches(selector, |k| {
        if k == NAMESPACE_NAME { Some(name) } else { labels.and_then(|l| l.get(k)).map(String::as_str) }
    })
}

/// The value of `key` on the namespace called `name` (with the implicit
/// `kubernetes.io/metadata.name` label), if any.
pub fn namespace_label<'a>(namespaces: &'a [Namespace], name: &'a str, key: &str) -> Option<&'a str> {
    if key == NAMESPACE_NAME {
        return Some(name);
    }
    find_namespace(namespaces, name)?.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn find_namespace<'a>(namespaces: &'a [Namespace], name: &str) -> Option<&'a Namespace> {
    namespaces.iter().find(|ns| ns.metadata.name.as_deref() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(json: serde_json::Value) -> LabelSelector {
        serde_json::from_value(json).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn selector_table() {
        use serde_json::json;
        let env_prod = labels(&[("env", "prod"), ("tier", "web")]);
        let env_dev = labels(&[("env", "dev")]);
        let none = labels(&[]);
        let cases: Vec<(&str, LabelSelector, &BTreeMap<String, String>, bool)> = vec![
            ("empty matches labelled", selector(json!({})), &env_prod, true),
            ("empty matches unlabelled", selector(json!({})), &none, true),
            ("matchLabels hit", selector(json!({"matchLabels": {"env": "prod"}})), &env_prod, true),
            ("matchLabels miss", selector(json!({"matchLabels": {"env": "prod"}})), &env_dev, false),
            (
                "matchLabels all",
                selector(json!({"matchLabels": {"env": "prod", "tier": "db"}})),
                &env_prod,
                false,
            ),
            (
                "In hit",
                selector(
                    json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]}),
                ),
                &env_prod,
                true,
            ),
            (
                "In miss",
                selector(
                    json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["staging"]}]}),
                ),
                &env_prod,
                false,
            ),
            (
                "In absent key",
                selector(json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]})),
                &none,
                false,
            ),
            (
                "NotIn hit",
                selector(
                    json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                ),
                &env_dev,
                true,
            ),
            (
                "NotIn miss",
                selector(
                    json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                ),
                &env_prod,
                false,
            ),
            (
                "NotIn absent key",
                selector(
                    json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                ),
                &none,
                true,
            ),
            (
                "Exists hit",
                selector(json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]})),
                &env_prod,
                true,
            ),
            (
                "Exists miss",
                selector(json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]})),
                &env_dev,
                false,
            ),
            (
                "DoesNotExist hit",
                selector(json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})),
                &env_dev,
                true,
            ),
            (
                "DoesNotExist miss",
                selector(json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})),
                &env_prod,
                false,
            ),
            (
                "unknown operator",
                selector(json!({"matchExpressions": [{"key": "env", "operator": "Gt", "values": ["1"]}]})),
                &env_prod,
                false,
            ),
            (
                "labels and expressions",
                selector(
                    json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}),
                ),
                &env_prod,
                false,
            ),
        ];
        for (name, sel, labels, want) in cases {
            assert_eq!(matches_map(&sel, labels), want, "{name}");
        }
    }

    #[test]
    fn namespace_name_label_is_implicit() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop", "labels": {"team": "red"}}
        }))
        .unwrap();
        let namespaces = [ns];
        let by_name = selector(serde_json::json!({"matchLabels": {NAMESPACE_NAME: "shop"}}));
        assert!(matches_namespace(&by_name, &namespaces, "shop"));
        assert!(!matches_namespace(&by_name, &namespaces, "other"));
        let by_team = selector(serde_json::json!({"matchLabels": {"team": "red"}}));
        assert!(matches_namespace(&by_team, &namespaces, "shop"));
        assert!(!matches_namespace(&by_team, &namespaces, "missing"));
        assert_eq!(namespace_label(&namespaces, "missing", NAMESPACE_NAME), Some("missing"));
        assert_eq!(namespace_label(&namespaces, "shop", "team"), Some("red"));
    }
}

//! Deciding whether a child is as Commons wants it: what Commons sets is compared with what is
//! there, so fields others set (labels, defaults the apiserver fills) never count as differences.

use serde::Serialize;
use serde_json::Value;

/// Whether every field `desired` sets has the same value in `observed`. Maps may hold more keys
/// in `observed` (labels others set, defaults the apiserver fills); lists must match exactly.
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().all(|(k, dv)| match o.get(k) {
            Some(ov) => is_subset(dv, ov),
            None => {
                dv.is_null()
                    || dv.as_object().is_some_and(|m| m.is_empty())
                    || dv.as_array().is_some_and(|a| a.is_empty())
            }
        }),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(dv, ov)| is_subset(dv, ov))
        }
        (d, o) => d == o,
    }
}

/// The first path where `desired` is not a subset of `observed` (see [`is_subset`]).
pub fn first_difference(desired: &Value, observed: &Value, path: &str) -> Option<String> {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().find_map(|(k, dv)| {
            let p = format!("{path}.{k}");
            match o.get(k) {
                Some(ov) => first_difference(dv, ov, &p),
                None if is_subset(&serde_json::json!({ k: dv }), &serde_json::json!({})) => None,
                None => Some(format!("{p} is missing")),
            }
        }),
        (Value::Array(d), Value::Array(o)) if d.len() == o.len() => d
            .iter()
            .zip(o)
            .enumerate()
            .find_map(|(i, (dv, ov))| first_difference(dv, ov, &format!("{path}[{i}]"))),
        (d, o) if d == o => None,
        (Value::String(d), Value::String(o)) if path.contains(".resources.") && same_quantity(d, o) => None,
        (d, o) => Some(format!("{path}: want {d}, have {o}")),
    }
}

/// Whether two resource amounts are the same quantity written differently (the apiserver stores
/// `0.5` as `500m` and `1024Mi` as `1Gi`).
fn same_quantity(a: &str, b: &str) -> bool {
    use crate::quantity::Milli;
    matches!((a.parse::<Milli>(), b.parse::<Milli>()), (Ok(x), Ok(y)) if x == y)
}

/// Where `observed` falls short of what `desired` asks for (ignoring server-managed metadata),
/// or `None` when it is up to date.
pub fn difference<K: Serialize, O: Serialize>(desired: &K, observed: Option<&O>) -> Option<String> {
    let Some(observed) = observed else {
        return Some("absent".into());
    };
    match (serde_json::to_value(desired), serde_json::to_value(observed)) {
        (Ok(mut d), Ok(o)) => {
            if let Some(meta) = d.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
                meta.remove("uid");
                meta.remove("managedFields");
            }
            first_difference(&d, &o, "")
        }
        (Err(e), _) | (_, Err(e)) => Some(format!("cannot compare: {e}")),
    }
}

/// Whether `observed` already is what `desired` asks for (ignoring server-managed metadata).
pub fn up_to_date<K: Serialize, O: Serialize>(desired: &K, observed: Option<&O>) -> bool {
    difference(desired, observed).is_none()
}

/// How [`crate::apply::write`] decides whether `observed` is as wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// By what Commons sets: a field it no longer sets, or a key it dropped from a map, does not
    /// count, as it cannot be told from one someone else set.
    Sets,
    /// Written out whatever it holds (for the first reconcile of a changed spec, which is how a
    /// key the spec dropped is removed: the apply removes what Commons stops setting).
    Always,
}

/// Why `desired` is to be written over `observed` as `compare` says, or `None` when it is not.
pub fn why_write<K: Serialize, O: Serialize>(
    desired: &K,
    observed: Option<&O>,
    compare: Compare,
) -> Option<String> {
    match (difference(desired, observed), compare) {
        (Some(why), _) => Some(why),
        (None, Compare::Always) => Some("the spec changed".to_owned()),
        (None, Compare::Sets) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_by_table() {
        let cases = [
            (json!({"a": 1}), json!({"a": 1, "b": 2}), true),
            (json!({"a": 1}), json!({"a": 2}), false),
            (json!({"a": {"x": "1"}}), json!({"a": {"x": "1", "y": "2"}}), true),
            (json!({"a": [1, 2]}), json!({"a": [1, 2]}), true),
            (json!({"a": [1, 2]}), json!({"a": [1, 2, 3]}), false),
            (json!({"a": [{"k": 1}]}), json!({"a": [{"k": 1, "default": true}]}), true),
            (json!({"a": {}}), json!({}), true),
            (json!({"a": []}), json!({}), true),
            (json!({"a": "x"}), json!({}), false),
        ];
        for (d, o, want) in cases {
            assert_eq!(is_subset(&d, &o), want, "{d} ⊆ {o}");
        }
    }

    #[test]
    fn what_is_written_by_how_it_is_compared() {
        let want = json!({"metadata": {"name": "n", "labels": {"team": "blue"}}});
        let same_and_more = json!({"metadata": {"name": "n", "labels": {"team": "blue", "env": "test"}}});
        let other = json!({"metadata": {"name": "n", "labels": {"team": "green"}}});
        let cases = [
            (None, Compare::Sets, Some("absent")),
            (None, Compare::Always, Some("absent")),
            (Some(&same_and_more), Compare::Sets, None),
            (Some(&same_and_more), Compare::Always, Some("the spec changed")),
            (Some(&other), Compare::Sets, Some(".metadata.labels.team: want \"blue\", have \"green\"")),
            (Some(&other), Compare::Always, Some(".metadata.labels.team: want \"blue\", have \"green\"")),
        ];
        for (observed, compare, want_why) in cases {
            assert_eq!(why_write(&want, observed, compare).as_deref(), want_why, "{observed:?} {compare:?}");
        }
    }

    #[test]
    fn resource_amounts_compare_as_quantities_and_nothing_else_does() {
        let desired =
            json!({"spec": {"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}}, "env": "0.5"}});
        let stored =
            json!({"spec": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}, "env": "0.5"}});
        assert_eq!(first_difference(&desired, &stored, ""), None);
        let env_differs =
            json!({"spec": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}, "env": "500m"}});
        assert!(first_difference(&desired, &env_differs, "").is_some());
        let cpu_differs =
            json!({"spec": {"resources": {"requests": {"cpu": "600m", "memory": "1Gi"}}, "env": "0.5"}});
        assert!(first_difference(&desired, &cpu_differs, "").is_some());
    }
}

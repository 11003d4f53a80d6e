//! Reachability between groups of pods, and a text rendering of the result.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::selector::{namespace_label, pod_namespace};
use super::{Peer, Snapshot};

/// Reachability between groups of pods keyed by `key` (pods for which it returns `None` are
/// left out, as are `Succeeded` and `Failed` pods). Returns the sorted group names and a matrix
/// where `m[i][j]` says some pod of group `i` reaches some pod of group `j`
/// ([`Snapshot::reachable`]). Only groups with at least one live pod appear. Because a pod always
/// reaches itself, the diagonal is always true.
pub fn matrix_by(snapshot: &Snapshot, key: impl Fn(&Pod) -> Option<String>) -> (Vec<String>, Vec<Vec<bool>>) {
    let mut groups: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in snapshot.live_pods() {
        if let Some(k) = key(pod) {
            groups.entry(k).or_default().push(pod);
        }
    }
    let matrix = groups
        .values()
        .map(|from| {
            groups
                .values()
                .map(|to| {
                    from.iter().any(|a| to.iter().any(|b| snapshot.reachable(Peer::Pod(a), Peer::Pod(b))))
                })
                .collect()
        })
        .collect();
    (groups.into_keys().collect(), matrix)
}

/// Reachability between groups of pods (e.g. tenancies), the group of a pod being the value of
/// `namespace_label` on the pod's NAMESPACE (`kubernetes.io/metadata.name` is implicit on every
/// namespace, so that key groups by namespace). Returns the sorted group names and a matrix
/// `m[i][j]` = some pod of group `i` reaches some pod of group `j`. Pods whose namespace lacks
/// the label are ignored. See [`matrix_by`].
pub fn group_matrix(snapshot: &Snapshot, namespace_label_key: &str) -> (Vec<String>, Vec<Vec<bool>>) {
    matrix_by(snapshot, |pod| {
        namespace_label(&snapshot.namespaces, pod_namespace(pod), namespace_label_key).map(str::to_owned)
    })
}

/// Reachability between services: the group of a pod is `namespace/value` where `value` is the
/// pod's own `pod_label`. Pods without the label are ignored. See [`matrix_by`].
pub fn service_matrix(snapshot: &Snapshot, pod_label: &str) -> (Vec<String>, Vec<Vec<bool>>) {
    matrix_by(snapshot, |pod| {
        let value = pod.metadata.labels.as_ref()?.get(pod_label)?;
        Some(format!("{}/{value}", pod_namespace(pod)))
    })
}

/// The top-left cell of a rendered matrix.
const CORNER: &str = "from \\ to";

/// Renders a matrix as an aligned text table: one header row of destination names, then one row
/// per source, cells `yes` or `-`, columns separated by two spaces, no trailing spaces, each
/// line ending in a newline. A cell missing from a short or ragged `m` renders as `-`.
pub fn render(names: &[String], m: &[Vec<bool>]) -> String {
    let width = |s: &str| s.chars().count();
    let first = names.iter().map(|n| width(n)).chain([width(CORNER)]).max().unwrap_or(0);
    let columns: Vec<usize> = names.iter().map(|n| width(n).max(3)).collect();
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = if i == 0 { first } else { columns.get(i - 1).copied().unwrap_or(0) };
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w.saturating_sub(width(cell))));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(std::iter::once(CORNER).chain(names.iter().map(String::as_str)).collect());
    for (i, from) in names.iter().enumerate() {
        let row = m.get(i);
        let cells = (0..names.len())
            .map(|j| if row.and_then(|r| r.get(j)).copied().unwrap_or(false) { "yes" } else { "-" });
        line(std::iter::once(from.as_str()).chain(cells).collect());
    }
    out
}

//! How Commons names what it makes: a tenancy's namespaces, and selectors that pick namespaces by
//! their immutable name (never by a label anyone allowed to label a namespace could forge).

use commons_crds::labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// The namespace name of a tenancy namespace entry.
pub fn namespace_name(tenancy: &str, short: &str) -> String {
    format!("{tenancy}-{short}")
}

/// Selects exactly the namespaces `names` by their immutable name label (none when empty).
pub fn namespaces_named(names: impl IntoIterator<Item = String>) -> LabelSelector {
    let mut values: Vec<String> = names.into_iter().collect();
    values.sort();
    values.dedup();
    if values.is_empty() {
        // `In` needs a value; this one is no namespace's name (names never start with '-').
        values.push("-none".into());
    }
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: labels::NAMESPACE_NAME.to_owned(),
            operator: "In".into(),
            values: Some(values),
        }]),
        ..LabelSelector::default()
    }
}

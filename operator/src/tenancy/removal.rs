//! Removing a namespace from a tenancy (pure decisions): a namespace that still holds
//! PersistentVolumeClaims or running pods is not deleted when it leaves `spec.namespaces` until
//! the platform team confirms it by name on the Tenancy, so a mistaken edit loses no data.

use commons_crds::tenancy::Tenancy;
use kube::ResourceExt;

/// The Tenancy annotation that confirms deleting removed namespaces that still hold something:
/// their full names, comma-separated.
pub const CONFIRM: &str = "commons.dev/confirm-namespace-deletion";

/// What a namespace still holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contents {
    /// PersistentVolumeClaims (their volumes go with them).
    pub claims: usize,
    /// Pods that have not finished.
    pub pods: usize,
}

impl Contents {
    /// Whether nothing would be lost.
    pub fn is_empty(&self) -> bool {
        self.claims == 0 && self.pods == 0
    }
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize, one: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") };
        match (self.claims, self.pods) {
            (0, p) => write!(f, "{}", plural(p, "running pod")),
            (c, 0) => write!(f, "{}", plural(c, "PersistentVolumeClaim")),
            (c, p) => write!(f, "{} and {}", plural(c, "PersistentVolumeClaim"), plural(p, "running pod")),
        }
    }
}

/// Whether the Tenancy's [`CONFIRM`] annotation names `namespace`.
pub fn confirmed(tenancy: &Tenancy, namespace: &str) -> bool {
    tenancy.annotations().get(CONFIRM).is_some_and(|v| v.split(',').map(str::trim).any(|n| n == namespace))
}

/// What becomes of a namespace removed from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Delete it: it holds nothing, or its deletion is confirmed.
    Delete,
    /// Keep it, for this reason (which says how to confirm).
    Hold(String),
}

/// Decides the fate of `namespace`, removed from `tenancy`'s spec and holding `contents`.
pub fn decide(tenancy: &Tenancy, namespace: &str, contents: Contents) -> Removal {
    if contents.is_empty() || confirmed(tenancy, namespace) {
        return Removal::Delete;
    }
    Removal::Hold(format!(
        "removed from spec.namespaces but still holds {contents}: kept until its deletion is confirmed \
         (kubectl annotate tenancy {} {CONFIRM}={namespace} --overwrite)",
        tenancy.name_any()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::fixtures::TenancyBuilder;

    #[test]
    fn only_an_empty_or_confirmed_namespace_is_deleted() {
        let plain = TenancyBuilder::new("leeds").build();
        let mut confirming = TenancyBuilder::new("leeds").build();
        confirming.metadata.annotations =
            Some([(CONFIRM.to_owned(), "leeds-old, leeds-archive".to_owned())].into());
        let some = |claims, pods| Contents { claims, pods };
        for (name, tenancy, ns, contents, deleted) in [
            ("empty", &plain, "leeds-old", some(0, 0), true),
            ("a claim", &plain, "leeds-old", some(1, 0), false),
            ("running pods", &plain, "leeds-old", some(0, 3), false),
            ("confirmed", &confirming, "leeds-archive", some(2, 1), true),
            ("another namespace confirmed", &confirming, "leeds-data", some(2, 1), false),
            ("a name that only starts alike", &confirming, "leeds-ol", some(1, 0), false),
        ] {
            let got = decide(tenancy, ns, contents);
            assert_eq!(got == Removal::Delete, deleted, "{name}: {got:?}");
        }
        let Removal::Hold(why) = decide(&plain, "leeds-old", some(2, 1)) else { panic!() };
        assert!(why.contains("2 PersistentVolumeClaims and 1 running pod"), "{why}");
        assert!(
            why.contains("kubectl annotate tenancy leeds commons.dev/confirm-namespace-deletion=leeds-old"),
            "{why}"
        );
    }
}

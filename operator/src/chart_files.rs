//! Files the Helm chart reads from code, never edited by hand: the rules of the ClusterRole
//! `commons:tenant-admin` (charts/commons/files/tenant-admin-rules.yaml). The chart's ClusterRole
//! for Commons includes them, because RBAC lets a subject bind a role, or write one, only with
//! rules it holds itself: Commons binds every tenancy's owners to that role and keeps its rules,
//! with neither `bind` nor `escalate`. A unit test fails when the committed file differs.

use crate::error::{Error, Result};

/// Where the chart keeps the file, from the workspace's root.
pub const TENANT_ADMIN_RULES: &str = "charts/commons/files/tenant-admin-rules.yaml";

/// The file's text: the role's rules as a YAML list, with a header saying where it comes from.
pub fn tenant_admin_rules() -> Result<String> {
    let rules = crate::tenancy::desired::tenant_admin_role().rules.unwrap_or_default();
    let body = serde_saphyr::to_string(&rules)
        .map_err(|source| Error::Yaml { name: "commons:tenant-admin".into(), source })?;
    Ok(format!(
        "# Generated from operator/src/tenancy/desired.rs (the rules of commons:tenant-admin). Do not\n\
         # edit by hand: `COMMONS_REGENERATE=1 cargo test -p commons-operator chart_files` writes it.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI fails when the chart's copy differs from the role Commons keeps; with
    /// `COMMONS_REGENERATE=1` the test writes it instead.
    #[test]
    fn the_charts_tenant_admin_rules_are_the_roles() {
        // At run time: the build may come from a cache shared by clones at other paths.
        let manifest =
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let path = std::path::Path::new(&manifest).join("..").join(TENANT_ADMIN_RULES);
        let want = tenant_admin_rules().unwrap();
        if std::env::var_os("COMMONS_REGENERATE").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == want,
            "{TENANT_ADMIN_RULES} differs from the role's rules: run `COMMONS_REGENERATE=1 cargo test -p commons-operator chart_files`"
        );
    }

    #[test]
    fn the_rules_are_a_yaml_list_with_every_rule() {
        let text = tenant_admin_rules().unwrap();
        let rules = crate::tenancy::desired::tenant_admin_role().rules.unwrap_or_default();
        assert_eq!(text.matches("\n- ").count() + usize::from(text.starts_with("- ")), rules.len(), "{text}");
        assert!(!text.contains("- bind\n") && !text.contains("- escalate\n"), "{text}");
    }
}

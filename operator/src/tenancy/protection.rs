//! Deletion protection: a ValidatingAdmissionPolicy (CEL the apiserver evaluates itself, so it
//! holds while Commons is down) refuses the deletion of a protected Tenancy, which would delete
//! every namespace it has and everything in them, and says how to lift the protection.

use std::collections::BTreeMap;

use commons_crds::labels;
use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, Validation,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The name of the policy and of its binding.
pub const NAME: &str = "tenancy-deletion-protection.commons.dev";

/// Whether the Tenancy being deleted (`oldObject`) may go: `spec.deletionProtection` when set,
/// else only a sandbox (one with `spec.expiresAt`).
pub const MAY_DELETE: &str = "has(oldObject.spec.deletionProtection) ? !oldObject.spec.deletionProtection : has(oldObject.spec.expiresAt)";

/// The refusal: which tenancy, why, what deleting it would do, and how to lift the protection.
pub const REFUSAL: &str = concat!(
    "'Tenancy ' + oldObject.metadata.name + ' is protected from deletion (' + ",
    "(has(oldObject.spec.deletionProtection) ? 'spec.deletionProtection is true' : ",
    "'on by default for a tenancy without spec.expiresAt, which is not a sandbox') + ",
    "'): deleting it deletes its ' + string(size(oldObject.spec.namespaces)) + ",
    "' namespace(s) and everything in them. To delete it, first lift the protection: kubectl patch tenancy ' + ",
    "oldObject.metadata.name + ' --type merge -p \\'{\"spec\":{\"deletionProtection\":false}}\\''"
);

fn meta() -> ObjectMeta {
    ObjectMeta {
        name: Some(NAME.into()),
        labels: Some(BTreeMap::from([(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned())])),
        ..ObjectMeta::default()
    }
}

/// The policy: every DELETE of a Tenancy is checked ([`MAY_DELETE`]).
pub fn policy() -> ValidatingAdmissionPolicy {
    ValidatingAdmissionPolicy {
        metadata: meta(),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".into()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![NamedRuleWithOperations {
                    api_groups: Some(vec![commons_crds::GROUP.into()]),
                    api_versions: Some(vec!["*".into()]),
                    operations: Some(vec!["DELETE".into()]),
                    resources: Some(vec!["tenancies".into()]),
                    ..NamedRuleWithOperations::default()
                }]),
                ..MatchResources::default()
            }),
            validations: Some(vec![Validation {
                expression: MAY_DELETE.into(),
                message_expression: Some(REFUSAL.into()),
                reason: Some("Forbidden".into()),
                ..Validation::default()
            }]),
            ..ValidatingAdmissionPolicySpec::default()
        }),
        ..ValidatingAdmissionPolicy::default()
    }
}

/// The binding that puts [`policy`] in force (refusing, not only warning).
pub fn binding() -> ValidatingAdmissionPolicyBinding {
    ValidatingAdmissionPolicyBinding {
        metadata: meta(),
        spec: ValidatingAdmissionPolicyBindingSpec {
            policy_name: NAME.into(),
            validation_actions: vec!["Deny".into()],
            ..ValidatingAdmissionPolicyBindingSpec::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenancy_deletion_is_checked_and_denied_when_protected() {
        let p = policy();
        let spec = p.spec.unwrap();
        assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
        let rule = &spec.match_constraints.unwrap().resource_rules.unwrap()[0];
        assert_eq!(rule.operations.as_deref(), Some(&["DELETE".to_owned()][..]));
        assert_eq!(rule.resources.as_deref(), Some(&["tenancies".to_owned()][..]));
        assert_eq!(rule.api_groups.as_deref(), Some(&[commons_crds::GROUP.to_owned()][..]));
        let v = &spec.validations.unwrap()[0];
        assert_eq!(v.expression, MAY_DELETE);
        assert!(
            v.message_expression.as_deref().unwrap().contains("{\"spec\":{\"deletionProtection\":false}}")
        );
        let b = binding().spec;
        assert_eq!(b.policy_name, NAME);
        assert_eq!(b.validation_actions, ["Deny"]);
    }
}

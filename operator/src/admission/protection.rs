//! Deletion protection: deleting a protected Tenancy (which deletes every namespace it has, and
//! everything in them) is refused, with how to lift the protection.

use commons_crds::tenancy::Tenancy;
use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};

use super::decide::convert;

/// Whether `req` deletes a Tenancy.
pub(super) fn deletes_a_tenancy(req: &AdmissionRequest<DynamicObject>) -> bool {
    req.kind.group == commons_crds::GROUP && req.kind.kind == "Tenancy" && req.operation == Operation::Delete
}

/// `Ok(None)` to let the deletion go ahead, `Ok(Some(why))` to refuse it.
pub(super) fn check(req: &AdmissionRequest<DynamicObject>) -> std::result::Result<Option<String>, String> {
    let Some(old) = req.old_object.as_ref() else {
        return Err("the deletion request does not carry the Tenancy; try again".into());
    };
    let tenancy: Tenancy = convert(old).map_err(|e| format!("cannot read the Tenancy: {e}"))?;
    Ok(refusal(&tenancy))
}

/// Why deleting `tenancy` is refused, if it is.
pub fn refusal(tenancy: &Tenancy) -> Option<String> {
    if !tenancy.spec.deletion_protected() {
        return None;
    }
    let name = tenancy.name_any();
    let count = tenancy.spec.namespaces.len();
    let namespaces = if count == 1 { "namespace".to_owned() } else { format!("{count} namespaces") };
    let why = match tenancy.spec.deletion_protection {
        Some(_) => "spec.deletionProtection is true".to_owned(),
        None => "on by default for a tenancy without spec.expiresAt, which is not a sandbox".to_owned(),
    };
    Some(format!(
        "Tenancy {name:?} is protected from deletion ({why}): deleting it deletes its {namespaces} and everything in them. \
         To delete it, first lift the protection: kubectl patch tenancy {name} --type merge -p '{{\"spec\":{{\"deletionProtection\":false}}}}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::refusal;
    use crate::tenancy::fixtures::TenancyBuilder;

    #[test]
    fn protected_by_default_unless_a_sandbox_or_lifted() {
        let at = jiff::Timestamp::from_second(2_000_000_000).unwrap();
        for (name, tenancy, refused) in [
            ("a tenancy by default", TenancyBuilder::new("leeds").build(), true),
            ("a sandbox by default", TenancyBuilder::new("leeds").expires_at(at).build(), false),
            ("lifted", TenancyBuilder::new("leeds").deletion_protection(false).build(), false),
            (
                "a sandbox asking for it",
                TenancyBuilder::new("leeds").expires_at(at).deletion_protection(true).build(),
                true,
            ),
        ] {
            let why = refusal(&tenancy);
            assert_eq!(why.is_some(), refused, "{name}: {why:?}");
            if let Some(why) = why {
                assert!(why.contains("\"deletionProtection\":false"), "{why}");
                assert!(why.contains("kubectl patch tenancy leeds"), "{why}");
            }
        }
    }
}

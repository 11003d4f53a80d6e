//! The tenancy policy check (`spec.allowed`): pods, Services and claims that use what their
//! tenancy does not allow are refused, naming the field, the reason and how it could be allowed.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};

use super::Admission;
use super::decide::convert;
use crate::policy::{Policy, Violation, added};
use crate::watch::Synced;

/// The objects the policy reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checked {
    Pod,
    Service,
    Claim,
}

fn checked(req: &AdmissionRequest<DynamicObject>) -> Option<Checked> {
    if !req.kind.group.is_empty() || !matches!(req.operation, Operation::Create | Operation::Update) {
        return None;
    }
    match (req.kind.kind.as_str(), req.sub_resource.as_deref()) {
        ("Pod", None | Some("ephemeralcontainers")) => Some(Checked::Pod),
        ("Service", None) => Some(Checked::Service),
        ("PersistentVolumeClaim", None) => Some(Checked::Claim),
        _ => None,
    }
}

impl Admission {
    /// `Ok(None)` to go on to the quota check, `Ok(Some(why))` to refuse, `Err(why)` when the
    /// check cannot be made now.
    pub(super) async fn check_policy(
        &self,
        req: &AdmissionRequest<DynamicObject>,
    ) -> std::result::Result<Option<String>, String> {
        let Some(what) = checked(req) else {
            return Ok(None);
        };
        let namespace = req.namespace.clone().unwrap_or_default();
        let Some((tenancy_name, tenancy)) = self.tenancy_of_namespace(&namespace, "policy").await? else {
            return Ok(None);
        };
        let policy = Policy::new(
            tenancy.spec.allowed.as_ref(),
            self.settings.default_registries.as_deref(),
            self.global_default_priority_class(),
        );
        let violations = |obj: &DynamicObject| -> std::result::Result<Vec<Violation>, String> {
            let read = |e: serde_json::Error| format!("cannot read the object: {e}");
            Ok(match what {
                Checked::Pod => policy.pod(&convert::<Pod>(obj).map_err(read)?),
                Checked::Service => policy.service(&convert::<Service>(obj).map_err(read)?),
                Checked::Claim => policy.claim(&convert::<PersistentVolumeClaim>(obj).map_err(read)?),
            })
        };
        let object = req.object.as_ref().ok_or("the request has no object")?;
        let mut found = violations(object)?;
        if req.operation == Operation::Update
            && let Some(old) = &req.old_object
        {
            found = added(found, &violations(old)?);
        }
        if found.is_empty() {
            return Ok(None);
        }
        let classes_unread = self.stores.priority_classes.synced() != Some(true);
        if classes_unread && found.iter().any(|v| v.rule == crate::policy::Rule::PriorityClass) {
            return Err(
                "Commons is starting and has not read the cluster's PriorityClasses yet; try again".into()
            );
        }
        for v in &found {
            self.metrics.policy_refusals.with_label_values(&[v.rule.as_str()]).inc();
        }
        let kind = req.kind.kind.as_str();
        let name = object.metadata.name.as_deref().unwrap_or(&req.name);
        let reasons: Vec<String> = found.iter().map(ToString::to_string).collect();
        Ok(Some(format!(
            "{kind} {name:?} in namespace {namespace:?} of tenancy {tenancy_name:?} is not allowed: {}",
            reasons.join("; ")
        )))
    }

    fn global_default_priority_class(&self) -> Option<String> {
        self.stores
            .priority_classes
            .state()
            .iter()
            .find(|pc: &&std::sync::Arc<PriorityClass>| pc.global_default == Some(true))
            .and_then(|pc| pc.metadata.name.clone())
    }
}

//! Whether a HostedService may run where it is (pure): only in a namespace that belongs to a
//! Tenancy, and only when its classification does not exceed the tenancy's.

use std::sync::Arc;

use commons_crds::hosted_service::HostedService;
use commons_crds::labels;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

/// Why a HostedService is not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its namespace was not made by Commons for a Tenancy.
    NotInTenancy,
    /// It handles data classified above what its tenancy may hold.
    ClassificationAboveTenancy,
    /// A child it needs has a name taken by an object that is not its own.
    NameTaken,
    /// The apiserver refused a child made from its spec (the message says why).
    Invalid,
}

impl Refusal {
    /// The reason, as the Admitted condition carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotInTenancy => "NotInTenancy",
            Refusal::ClassificationAboveTenancy => "ClassificationAboveTenancy",
            Refusal::NameTaken => "NameTaken",
            Refusal::Invalid => "Invalid",
        }
    }
}

/// The decision on one HostedService.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    /// It runs in this tenancy.
    Admitted(Arc<Tenancy>),
    /// It does not run; the message says why in words.
    Refused(Refusal, String),
    /// Its tenancy is gone or being deleted: the namespace, and the service with it, are being
    /// garbage-collected. Nothing is to be done (and nothing to warn anyone about).
    Leaving,
}

/// The tenancy `namespace` belongs to, by Commons' label and owner reference (the label alone
/// could be set by whoever may label namespaces; the owner reference is set only by Commons).
pub fn tenancy_of(namespace: &Namespace) -> Option<String> {
    let name = namespace.labels().get(labels::TENANCY)?;
    let owner = crate::watch::owned_by::<Tenancy, _>(namespace)?;
    (crate::watch::is_managed(namespace) && &owner.name == name).then(|| name.clone())
}

/// Decides whether `hs` may run, given its namespace (`None`: not found) and the tenancy named
/// by it (`None`: not found).
pub fn decide(hs: &HostedService, namespace: Option<&Namespace>, tenancy: Option<Arc<Tenancy>>) -> Admission {
    let ns = hs.namespace().unwrap_or_default();
    let Some(owner) = namespace.and_then(tenancy_of) else {
        return Admission::Refused(
            Refusal::NotInTenancy,
            format!(
                "namespace {ns} does not belong to a Tenancy; a HostedService runs only in a tenancy's namespace"
            ),
        );
    };
    let Some(t) = tenancy.filter(|t| t.name_any() == owner && t.metadata.deletion_timestamp.is_none()) else {
        return Admission::Leaving;
    };
    if hs.spec.classification > t.spec.classification {
        return Admission::Refused(
            Refusal::ClassificationAboveTenancy,
            format!(
                "spec.classification {} is above the classification of Tenancy {owner} ({}); lower it or ask for a tenancy cleared for {}",
                hs.spec.classification, t.spec.classification, hs.spec.classification
            ),
        );
    }
    Admission::Admitted(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosted::fixtures::{hosted, namespace, tenancy};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn owned(mut ns: Namespace, t: &Tenancy) -> Namespace {
        ns.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "commons.dev/v1alpha1".into(),
            kind: "Tenancy".into(),
            name: t.name_any(),
            uid: t.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        ns
    }

    #[test]
    fn admission_by_table() {
        let t = Arc::new(tenancy("t"));
        let mut sensitive_tenancy = tenancy("t");
        sensitive_tenancy.spec.classification = commons_crds::Classification::OfficialSensitive;
        let sensitive_tenancy = Arc::new(sensitive_tenancy);
        let ours = owned(namespace("t-main", Some("t")), &t);
        let labelled_only = namespace("t-main", Some("t"));
        let plain = namespace("t-main", None);
        let official = hosted("s", "t-main").build();
        let sensitive = hosted("s", "t-main").sensitive().build();
        type Case<'a> =
            (&'a str, &'a HostedService, Option<&'a Namespace>, Option<Arc<Tenancy>>, Option<Refusal>);
        let cases: Vec<Case> = vec![
            ("admitted", &official, Some(&ours), Some(t.clone()), None),
            ("sensitive in a sensitive tenancy", &sensitive, Some(&ours), Some(sensitive_tenancy), None),
            (
                "above the tenancy",
                &sensitive,
                Some(&ours),
                Some(t.clone()),
                Some(Refusal::ClassificationAboveTenancy),
            ),
            ("plain namespace", &official, Some(&plain), Some(t.clone()), Some(Refusal::NotInTenancy)),
            (
                "label forged without the owner",
                &official,
                Some(&labelled_only),
                Some(t.clone()),
                Some(Refusal::NotInTenancy),
            ),
            ("no namespace", &official, None, Some(t.clone()), Some(Refusal::NotInTenancy)),
        ];
        for (name, hs, ns, tenancy, want) in cases {
            let got = match decide(hs, ns, tenancy) {
                Admission::Admitted(_) => None,
                Admission::Leaving => panic!("{name}: leaving"),
                Admission::Refused(r, message) => {
                    assert!(!message.is_empty());
                    Some(r)
                }
            };
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(
            decide(&official, Some(&ours), None),
            Admission::Leaving,
            "the tenancy is gone: its namespace goes too"
        );
    }
}

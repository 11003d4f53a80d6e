//! What a tenancy's workloads may use (`spec.allowed`), decided by pure functions: every
//! violation a pod, Service or PersistentVolumeClaim commits, with the field and the reason. The
//! admission webhook ([`crate::admission`]) refuses a request that adds one.

pub mod image;

use commons_crds::allowed::{Allowed, AllowedToleration};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodSpec, Service, Toleration};

/// The taints Kubernetes itself tolerates for pods (DefaultTolerationSeconds, the DaemonSet
/// controller): the node conditions. Every tenancy's pods may tolerate them.
pub const NODE_CONDITION_TAINTS: [&str; 7] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/network-unavailable",
];

/// Which rule a violation breaks (also the metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A Service with `externalIPs` (CVE-2020-8554).
    ExternalIps,
    /// A NodePort Service the tenancy does not allow.
    NodePort,
    /// A PriorityClass the tenancy does not allow.
    PriorityClass,
    /// A toleration the tenancy does not allow.
    Toleration,
    /// An image from a registry the tenancy does not allow.
    Registry,
    /// A claim of a StorageClass the tenancy does not allow.
    StorageClass,
}

impl Rule {
    /// The rule as metrics and logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ExternalIps => "external-ips",
            Rule::NodePort => "node-port",
            Rule::PriorityClass => "priority-class",
            Rule::Toleration => "toleration",
            Rule::Registry => "registry",
            Rule::StorageClass => "storage-class",
        }
    }
}

/// One thing an object uses that its tenancy does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule it breaks.
    pub rule: Rule,
    /// The field, as a path into the object (`spec.containers[0].image`).
    pub field: String,
    /// What is used (an image, a class, a toleration): an update is refused only for what its
    /// previous version did not already use.
    pub subject: String,
    /// Why it is refused and how it could be allowed.
    pub reason: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A tenancy's policy as it applies now: its `spec.allowed`, the registries in force, and the
/// cluster's global default PriorityClass.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The tenancy's allowances (the defaults when it sets none).
    pub allowed: Allowed,
    /// The registries images may come from: the tenancy's, else the operator's; `None` for any.
    pub registries: Option<Vec<String>>,
    /// The PriorityClass with `globalDefault: true`, which Kubernetes gives pods naming none.
    pub global_default_priority_class: Option<String>,
}

impl Policy {
    /// The policy of a tenancy with `allowed`, under the operator's default registries.
    pub fn new(
        allowed: Option<&Allowed>,
        default_registries: Option<&[String]>,
        global_default_priority_class: Option<String>,
    ) -> Policy {
        let allowed = allowed.cloned().unwrap_or_default();
        let registries = allowed.registries.clone().or_else(|| default_registries.map(<[String]>::to_vec));
        Policy { allowed, registries, global_default_priority_class }
    }

    /// What `pod` uses that the tenancy does not allow.
    pub fn pod(&self, pod: &Pod) -> Vec<Violation> {
        let Some(spec) = pod.spec.as_ref() else {
            return Vec::new();
        };
        let mut out = self.images(spec);
        if let Some(class) = spec.priority_class_name.as_deref().filter(|c| !c.is_empty())
            && !self.allowed.priority_classes.iter().any(|c| c == class)
            && self.global_default_priority_class.as_deref() != Some(class)
        {
            out.push(Violation {
                rule: Rule::PriorityClass,
                field: "spec.priorityClassName".into(),
                subject: class.to_owned(),
                reason: format!(
                    "PriorityClass {class:?} is not allowed for the tenancy (the platform team can list it in the Tenancy's spec.allowed.priorityClasses)"
                ),
            });
        }
        for (i, toleration) in spec.tolerations.iter().flatten().enumerate() {
            if !self.tolerates(toleration) {
                let subject = describe(toleration);
                out.push(Violation {
                    rule: Rule::Toleration,
                    field: format!("spec.tolerations[{i}]"),
                    reason: format!(
                        "tolerating {subject} is not allowed for the tenancy (the platform team can list the taint in the Tenancy's spec.allowed.tolerations)"
                    ),
                    subject,
                });
            }
        }
        out
    }

    fn images(&self, spec: &PodSpec) -> Vec<Violation> {
        let Some(registries) = &self.registries else {
            return Vec::new();
        };
        let mut images: Vec<(String, &str)> = Vec::new();
        for (list, containers) in
            [("containers", Some(&spec.containers)), ("initContainers", spec.init_containers.as_ref())]
        {
            for (i, c) in containers.into_iter().flatten().enumerate() {
                images.push((format!("spec.{list}[{i}].image"), c.image.as_deref().unwrap_or_default()));
            }
        }
        for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
            images.push((
                format!("spec.ephemeralContainers[{i}].image"),
                c.image.as_deref().unwrap_or_default(),
            ));
        }
        for (i, v) in spec.volumes.iter().flatten().enumerate() {
            if let Some(reference) = v.image.as_ref().and_then(|img| img.reference.as_deref()) {
                images.push((format!("spec.volumes[{i}].image.reference"), reference));
            }
        }
        images
            .into_iter()
            .filter(|(_, image)| !image.is_empty() && !registries.iter().any(|r| image::from_registry(image, r)))
            .map(|(field, image)| Violation {
                rule: Rule::Registry,
                reason: format!(
                    "image {:?} is not from a registry the tenancy allows ({}; the platform team sets them in the Tenancy's spec.allowed.registries)",
                    image::qualified(image),
                    if registries.is_empty() { "none".to_owned() } else { registries.join(", ") }
                ),
                subject: image::qualified(image),
                field,
            })
            .collect()
    }

    fn tolerates(&self, toleration: &Toleration) -> bool {
        let key = toleration.key.as_deref().unwrap_or_default();
        if key.is_empty() {
            return false;
        }
        if NODE_CONDITION_TAINTS.contains(&key) {
            return true;
        }
        let exists = toleration.operator.as_deref() == Some("Exists");
        self.allowed.tolerations.iter().any(|a: &AllowedToleration| {
            a.key == key
                && match &a.value {
                    None => true,
                    Some(v) => !exists && toleration.value.as_deref().unwrap_or_default() == v,
                }
                && match a.effect {
                    None => true,
                    Some(e) => toleration.effect.as_deref() == Some(e.as_str()),
                }
        })
    }

    /// What `service` uses that the tenancy does not allow.
    pub fn service(&self, service: &Service) -> Vec<Violation> {
        let Some(spec) = service.spec.as_ref() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
            out.push(Violation {
                rule: Rule::ExternalIps,
                field: format!("spec.externalIPs[{i}]"),
                subject: ip.clone(),
                reason: "Services in a tenancy may not set externalIPs: they can capture any address's traffic in the cluster (CVE-2020-8554); use a LoadBalancer Service".into(),
            });
        }
        if spec.type_.as_deref() == Some("NodePort") && !self.allowed.node_ports {
            out.push(Violation {
                rule: Rule::NodePort,
                field: "spec.type".into(),
                subject: "NodePort".into(),
                reason: "NodePort Services open a port on every node and are not allowed for the tenancy (the platform team can set the Tenancy's spec.allowed.nodePorts: true); use ClusterIP or LoadBalancer".into(),
            });
        }
        out
    }

    /// What `claim` uses that the tenancy does not allow.
    pub fn claim(&self, claim: &PersistentVolumeClaim) -> Vec<Violation> {
        let Some(allowed) = &self.allowed.storage_classes else {
            return Vec::new();
        };
        let class = claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or_default();
        // An empty class binds only to an existing volume without one: nothing is provisioned.
        if class.is_empty() || allowed.iter().any(|c| c == class) {
            return Vec::new();
        }
        vec![Violation {
            rule: Rule::StorageClass,
            field: "spec.storageClassName".into(),
            subject: class.to_owned(),
            reason: format!(
                "StorageClass {class:?} is not allowed for the tenancy (allowed: {}; the platform team sets them in the Tenancy's spec.allowed.storageClasses)",
                if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") }
            ),
        }]
    }
}

fn describe(t: &Toleration) -> String {
    let key = t.key.as_deref().unwrap_or_default();
    if key.is_empty() {
        return "every taint".into();
    }
    let mut out = key.to_owned();
    if let Some(v) = t.value.as_deref().filter(|v| !v.is_empty()) {
        out.push('=');
        out.push_str(v);
    }
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        out.push(':');
        out.push_str(e);
    }
    format!("taint {out}")
}

/// The violations of `now` that `before` (the previous version of the object, on an update) did
/// not commit already: an object admitted before its tenancy's policy changed can still be
/// updated, but cannot take anything new that is not allowed.
pub fn added(now: Vec<Violation>, before: &[Violation]) -> Vec<Violation> {
    now.into_iter().filter(|v| !before.iter().any(|b| b.rule == v.rule && b.subject == v.subject)).collect()
}

#[cfg(test)]
mod tests;

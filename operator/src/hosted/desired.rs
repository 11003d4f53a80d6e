//! What one admitted HostedService is made of (pure): a Deployment whose pods meet the restricted
//! Pod Security profile, a Service, a ServiceAccount of its own with no token, and a
//! PodDisruptionBudget when more than one copy runs.

use std::collections::BTreeMap;

use commons_crds::hosted_service::{HostedService, ServicePort};
use commons_crds::labels;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, SeccompProfile, SecurityContext, Service, ServiceAccount, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

/// The container's name in every HostedService pod.
pub const CONTAINER: &str = "app";
/// Where the writable scratch directory is mounted (the root filesystem is read-only).
pub const SCRATCH: &str = "/tmp";
/// The DNS domain of the cluster's Services.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Every child of one HostedService, as it must be.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// Runs the application.
    pub deployment: Deployment,
    /// Its in-cluster address; `None` when it listens on no port.
    pub service: Option<Service>,
    /// Its identity, with no API token mounted.
    pub service_account: ServiceAccount,
    /// Keeps one copy up through voluntary disruption; only with more than one copy.
    pub disruption_budget: Option<PodDisruptionBudget>,
}

/// The labels that select the service's pods.
pub fn selector_labels(hs: &HostedService) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::HOSTED_SERVICE.to_owned(), hs.name_any())])
}

/// The selector as the scale subresource reports it (`commons.dev/hosted-service=<name>`).
pub fn selector_string(hs: &HostedService) -> String {
    format!("{}={}", labels::HOSTED_SERVICE, hs.name_any())
}

/// The in-cluster DNS name of the service.
pub fn endpoint(hs: &HostedService) -> String {
    format!("{}.{}.svc.{CLUSTER_DOMAIN}", hs.name_any(), hs.namespace().unwrap_or_default())
}

/// The labels of every child and of the pods: the label contract segments, reachability and
/// metering read (`crds/src/labels.rs`).
fn contract_labels(hs: &HostedService, tenancy: &Tenancy) -> BTreeMap<String, String> {
    let mut l = selector_labels(hs);
    l.insert(labels::TENANCY.to_owned(), tenancy.name_any());
    l.insert(labels::EXPOSURE.to_owned(), exposure(hs).to_owned());
    l.insert(labels::CLASSIFICATION.to_owned(), hs.spec.classification.as_str().to_owned());
    l.insert("app.kubernetes.io/name".to_owned(), hs.name_any());
    l
}

fn exposure(hs: &HostedService) -> &'static str {
    match hs.spec.exposure {
        commons_crds::hosted_service::Exposure::Tenancy => "tenancy",
        commons_crds::hosted_service::Exposure::Segment => "segment",
        commons_crds::hosted_service::Exposure::Public => "public",
    }
}

fn meta(hs: &HostedService, tenancy: &Tenancy) -> ObjectMeta {
    let mut labels = contract_labels(hs, tenancy);
    labels.insert(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned());
    ObjectMeta {
        name: Some(hs.name_any()),
        namespace: hs.namespace(),
        labels: Some(labels),
        owner_references: hs.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// The children of `hs`, admitted in `tenancy`; `suspended` runs no copy (the spec's `replicas`
/// is kept for when the tenancy is resumed).
pub fn children(hs: &HostedService, tenancy: &Tenancy, suspended: bool) -> Children {
    let replicas = if suspended { 0 } else { hs.spec.replicas };
    Children {
        deployment: deployment(hs, tenancy, replicas),
        service: service(hs, tenancy),
        service_account: ServiceAccount {
            metadata: meta(hs, tenancy),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        },
        disruption_budget: (replicas > 1).then(|| PodDisruptionBudget {
            metadata: meta(hs, tenancy),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(selector_labels(hs)),
                    ..LabelSelector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            status: None,
        }),
    }
}

fn deployment(hs: &HostedService, tenancy: &Tenancy, replicas: i32) -> Deployment {
    let spec = &hs.spec;
    let probes = spec.probes.clone().unwrap_or_default();
    let quantities = |c: Option<&commons_crds::common::ComputeResources>| {
        let c = c?;
        let map: BTreeMap<String, Quantity> = [("cpu", &c.cpu), ("memory", &c.memory)]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), Quantity(v.clone()?))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    let resources = spec.resources.as_ref().map(|r| k8s_openapi::api::core::v1::ResourceRequirements {
        requests: quantities(r.requests.as_ref()),
        limits: quantities(r.limits.as_ref()),
        ..Default::default()
    });
    let container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        ports: (!spec.ports.is_empty()).then(|| spec.ports.iter().map(container_port).collect()),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        resources,
        readiness_probe: probes.readiness,
        liveness_probe: probes.liveness,
        startup_probe: probes.startup,
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: SCRATCH.into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let mut pod_labels = contract_labels(hs, tenancy);
    pod_labels.insert(
        labels::COST_CENTRE.to_owned(),
        crate::tenancy::desired::label_value(&tenancy.spec.organisation.cost_centre),
    );
    Deployment {
        metadata: meta(hs, tenancy),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(selector_labels(hs)), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    service_account_name: Some(hs.name_any()),
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn container_port(p: &ServicePort) -> ContainerPort {
    ContainerPort {
        name: Some(p.name.clone()),
        container_port: p.target_port.unwrap_or(p.port),
        protocol: Some(p.protocol.as_str().to_owned()),
        ..ContainerPort::default()
    }
}

fn service(hs: &HostedService, tenancy: &Tenancy) -> Option<Service> {
    if hs.spec.ports.is_empty() {
        return None;
    }
    Some(Service {
        metadata: meta(hs, tenancy),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(hs)),
            ports: Some(
                hs.spec
                    .ports
                    .iter()
                    .map(|p| k8s_openapi::api::core::v1::ServicePort {
                        name: Some(p.name.clone()),
                        port: p.port,
                        target_port: Some(IntOrString::Int(p.target_port.unwrap_or(p.port))),
                        protocol: Some(p.protocol.as_str().to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosted::fixtures::{hosted, tenancy};

    #[test]
    fn pods_meet_the_restricted_profile_and_carry_the_label_contract() {
        let c = children(
            &hosted("payroll", "t-hr").replicas(2).port("http", 80, Some(8080)).build(),
            &tenancy("t"),
            false,
        );
        let d = c.deployment.spec.unwrap();
        let pod = d.template.spec.unwrap();
        let labels = d.template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels[labels::TENANCY], "t");
        assert_eq!(labels[labels::HOSTED_SERVICE], "payroll");
        assert_eq!(labels[labels::EXPOSURE], "tenancy");
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.service_account_name.as_deref(), Some("payroll"));
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let sc = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(pod.containers[0].volume_mounts.as_ref().unwrap()[0].mount_path, SCRATCH);
        assert!(pod.volumes.unwrap()[0].empty_dir.is_some());
        assert_eq!(pod.containers[0].ports.as_ref().unwrap()[0].container_port, 8080);
        assert_eq!(c.service_account.automount_service_account_token, Some(false));
    }

    #[test]
    fn a_cost_centre_no_label_may_hold_is_made_one() {
        let t = crate::tenancy::fixtures::TenancyBuilder::new("t").cost_centre("LG/001-").build();
        let d = children(&hosted("s", "t-a").build(), &t, false).deployment.spec.unwrap();
        assert_eq!(d.template.metadata.unwrap().labels.unwrap()[labels::COST_CENTRE], "LG.001");
    }

    #[test]
    fn children_by_table() {
        // (replicas, suspended, ports) → (deployment replicas, disruption budget, service)
        let cases = [
            (1, false, true, 1, false, true),
            (2, false, true, 2, true, true),
            (3, true, true, 0, false, true),
            (0, false, false, 0, false, false),
        ];
        for (replicas, suspended, ports, want_replicas, want_pdb, want_service) in cases {
            let mut b = hosted("s", "t-a").replicas(replicas);
            if ports {
                b = b.port("http", 80, None);
            }
            let hs = b.build();
            let c = children(&hs, &tenancy("t"), suspended);
            assert_eq!(
                c.deployment.spec.as_ref().unwrap().replicas,
                Some(want_replicas),
                "{replicas} {suspended}"
            );
            assert_eq!(c.disruption_budget.is_some(), want_pdb, "{replicas} {suspended}");
            assert_eq!(c.service.is_some(), want_service);
            assert_eq!(hs.spec.replicas, replicas, "the asked-for replicas are never changed");
        }
    }

    #[test]
    fn every_child_is_owned_by_the_service_in_its_namespace() {
        let hs = hosted("s", "t-a").port("http", 80, None).build();
        let c = children(&hs, &tenancy("t"), false);
        let metas =
            [&c.deployment.metadata, &c.service.as_ref().unwrap().metadata, &c.service_account.metadata];
        for m in metas {
            assert_eq!(m.namespace.as_deref(), Some("t-a"));
            let owner = &m.owner_references.as_ref().unwrap()[0];
            assert_eq!((owner.kind.as_str(), owner.controller), ("HostedService", Some(true)));
            assert_eq!(m.labels.as_ref().unwrap()[labels::MANAGED_BY], labels::MANAGER);
        }
        assert_eq!(endpoint(&hs), "s.t-a.svc.cluster.local");
        assert_eq!(selector_string(&hs), "commons.dev/hosted-service=s");
    }
}

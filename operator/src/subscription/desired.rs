//! What an Active subscription makes in the consumer's namespace (pure): for shared use, the one
//! path out to the service's pods on its ports; for an instance, a HostedService of its own made
//! from the published one.

use std::collections::BTreeMap;

use commons_crds::hosted_service::{Exposure, HostedService, HostedServiceSpec};
use commons_crds::labels;
use commons_crds::subscription::Subscription;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::naming::namespaces_named;

/// The annotation on an instance naming the published service it was made from.
pub const INSTANCE_OF: &str = "commons.dev/instance-of";

/// The name of the consumer-side policy of a subscription.
pub fn egress_policy_name(sub: &Subscription) -> String {
    format!("commons-subscription-{}", sub.name_any())
}

/// The name of the provider-side policy of a service: who subscribes to it.
pub fn ingress_policy_name(hs: &HostedService) -> String {
    format!("commons-consumers-{}", hs.name_any())
}

fn managed(
    name: String,
    namespace: Option<String>,
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace,
        labels: Some(BTreeMap::from([(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned())])),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// The service's pods.
fn pods_of(hs: &HostedService) -> LabelSelector {
    LabelSelector {
        match_labels: Some(crate::hosted::desired::selector_labels(hs)),
        ..LabelSelector::default()
    }
}

/// The ports the service's pods listen on (NetworkPolicy ports are the pods' ports, not the
/// Service's).
pub fn pod_ports(hs: &HostedService) -> Vec<NetworkPolicyPort> {
    hs.spec
        .ports
        .iter()
        .map(|p| NetworkPolicyPort {
            protocol: Some(p.protocol.as_str().to_owned()),
            port: Some(IntOrString::Int(p.target_port.unwrap_or(p.port))),
            end_port: None,
        })
        .collect()
}

/// In the consumer's namespace: its pods may reach the service's pods on the service's ports, and
/// nothing else of the provider's. `None` when the service listens on no port.
pub fn egress_policy(sub: &Subscription, hs: &HostedService) -> Option<NetworkPolicy> {
    let ports = pod_ports(hs);
    if ports.is_empty() {
        return None;
    }
    let provider_ns = hs.namespace().unwrap_or_default();
    Some(NetworkPolicy {
        metadata: managed(egress_policy_name(sub), sub.namespace(), sub.controller_owner_ref(&())),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespaces_named([provider_ns])),
                    pod_selector: Some(pods_of(hs)),
                    ip_block: None,
                }]),
                ports: Some(ports),
            }]),
            ingress: None,
        }),
    })
}

/// In the provider's namespace: the service's pods may be reached on its ports from the namespaces
/// of its active subscriptions (`consumers`). `None` when there are none, or no ports.
pub fn ingress_policy(hs: &HostedService, consumers: &[String]) -> Option<NetworkPolicy> {
    let ports = pod_ports(hs);
    if ports.is_empty() || consumers.is_empty() {
        return None;
    }
    Some(NetworkPolicy {
        metadata: managed(ingress_policy_name(hs), hs.namespace(), hs.controller_owner_ref(&())),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods_of(hs)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespaces_named(consumers.iter().cloned())),
                    pod_selector: None,
                    ip_block: None,
                }]),
                ports: Some(ports),
            }]),
            egress: None,
        }),
    })
}

/// An instance of the published `hs` in the subscription's namespace, owned by the subscription:
/// the published image, ports, resources and probes; the consumer's own classification (its
/// tenancy's unless set), exposure, replicas and environment.
pub fn instance(sub: &Subscription, hs: &HostedService, consumer: &Tenancy) -> HostedService {
    let settings = sub.spec.instance.clone().unwrap_or_default();
    let mut meta = managed(sub.name_any(), sub.namespace(), sub.controller_owner_ref(&()));
    meta.annotations = Some(BTreeMap::from([(
        INSTANCE_OF.to_owned(),
        format!("{}/{}", hs.namespace().unwrap_or_default(), hs.name_any()),
    )]));
    HostedService {
        metadata: meta,
        spec: HostedServiceSpec {
            image: hs.spec.image.clone(),
            replicas: settings.replicas.unwrap_or(1),
            ports: hs.spec.ports.clone(),
            resources: hs.spec.resources.clone(),
            env: settings.env,
            probes: hs.spec.probes.clone(),
            classification: settings.classification.unwrap_or(consumer.spec.classification),
            exposure: settings.exposure.unwrap_or(Exposure::Tenancy),
            sharing: None,
            catalogue: None,
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosted::fixtures::hosted;
    use crate::subscription::fixtures::subscription;
    use crate::tenancy::fixtures::TenancyBuilder;

    #[test]
    fn the_paths_open_exactly_the_services_pods_on_its_ports() {
        let hs = hosted("payroll", "north-hr").port("http", 80, Some(8080)).port("admin", 9000, None).build();
        let sub = subscription("payroll", "south-apps", "north-hr", "payroll").build();
        let out = egress_policy(&sub, &hs).unwrap();
        assert_eq!(out.metadata.namespace.as_deref(), Some("south-apps"));
        assert_eq!(out.metadata.owner_references.as_ref().unwrap()[0].kind, "Subscription");
        let spec = out.spec.unwrap();
        let rule = &spec.egress.unwrap()[0];
        let peer = &rule.to.as_ref().unwrap()[0];
        assert_eq!(
            peer.namespace_selector.as_ref().unwrap().match_expressions.as_ref().unwrap()[0].values,
            Some(vec!["north-hr".to_owned()])
        );
        assert_eq!(
            peer.pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap()[labels::HOSTED_SERVICE],
            "payroll"
        );
        let ports: Vec<_> = rule.ports.as_ref().unwrap().iter().map(|p| p.port.clone()).collect();
        assert_eq!(ports, [Some(IntOrString::Int(8080)), Some(IntOrString::Int(9000))]);

        let inbound = ingress_policy(&hs, &["south-apps".into(), "west-apps".into()]).unwrap();
        assert_eq!(inbound.metadata.namespace.as_deref(), Some("north-hr"));
        let spec = inbound.spec.unwrap();
        assert_eq!(spec.pod_selector.unwrap().match_labels.unwrap()[labels::HOSTED_SERVICE], "payroll");
        assert_eq!(spec.policy_types.unwrap(), ["Ingress"]);
        assert!(ingress_policy(&hs, &[]).is_none(), "no consumers, no path");
        assert!(egress_policy(&sub, &hosted("quiet", "north-hr").build()).is_none(), "no ports, no path");
    }

    #[test]
    fn an_instance_copies_what_runs_the_service_and_keeps_the_consumers_own() {
        let mut hs = hosted("payroll", "north-hr").port("http", 80, None).sensitive().build();
        hs.spec.env = vec![k8s_openapi::api::core::v1::EnvVar {
            name: "SECRET_MODE".into(),
            value: Some("x".into()),
            value_from: None,
        }];
        let sub = subscription("my-payroll", "south-apps", "north-hr", "payroll").instance().build();
        let south = TenancyBuilder::new("south").build();
        let copy = instance(&sub, &hs, &south);
        assert_eq!(copy.metadata.namespace.as_deref(), Some("south-apps"));
        assert_eq!(copy.name_any(), "my-payroll");
        assert_eq!(copy.spec.image, hs.spec.image);
        assert_eq!(copy.spec.ports, hs.spec.ports);
        assert_eq!(copy.spec.classification, south.spec.classification, "the consumer's own classification");
        assert!(copy.spec.env.is_empty(), "the provider's configuration is not copied");
        assert_eq!(copy.spec.replicas, 1);
        assert!(copy.spec.sharing.is_none() && copy.spec.catalogue.is_none());
        assert_eq!(copy.metadata.owner_references.unwrap()[0].kind, "Subscription");
        assert_eq!(copy.metadata.annotations.unwrap()[INSTANCE_OF], "north-hr/payroll");
    }
}

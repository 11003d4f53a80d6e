//! Test fixtures: HostedServices (and the tenancies and namespaces around them) built step by step.

use commons_crds::common::{Classification, Protocol};
use commons_crds::hosted_service::{Exposure, HostedService, HostedServiceSpec, ServicePort};
use commons_crds::labels;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ObjectMeta;

use crate::tenancy::fixtures::TenancyBuilder;

/// Builds a HostedService for tests: one replica, no ports, OFFICIAL, tenancy exposure.
#[derive(Debug)]
pub struct HostedBuilder {
    hs: HostedService,
}

/// A HostedService `name` in `namespace`.
pub fn hosted(name: &str, namespace: &str) -> HostedBuilder {
    let spec = HostedServiceSpec {
        image: "registry.example.gov.uk/app:1".into(),
        replicas: 1,
        ports: vec![],
        resources: None,
        env: vec![],
        probes: None,
        classification: Classification::Official,
        exposure: Exposure::Tenancy,
        sharing: None,
        catalogue: None,
    };
    let mut hs = HostedService::new(name, spec);
    hs.metadata.namespace = Some(namespace.into());
    hs.metadata.uid = Some(format!("uid-{namespace}-{name}"));
    hs.metadata.generation = Some(1);
    HostedBuilder { hs }
}

impl HostedBuilder {
    pub fn replicas(mut self, n: i32) -> Self {
        self.hs.spec.replicas = n;
        self
    }

    pub fn port(mut self, name: &str, port: i32, target: Option<i32>) -> Self {
        self.hs.spec.ports.push(ServicePort {
            name: name.into(),
            port,
            target_port: target,
            protocol: Protocol::Tcp,
        });
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.hs.spec.classification = Classification::OfficialSensitive;
        self
    }

    pub fn build(self) -> HostedService {
        self.hs
    }
}

/// A tenancy `name` with a namespace `main`.
pub fn tenancy(name: &str) -> Tenancy {
    TenancyBuilder::new(name).build()
}

/// A namespace as Commons makes it for `tenancy` (`None`: a namespace of no tenancy).
pub fn namespace(name: &str, tenancy: Option<&str>) -> Namespace {
    let mut l = std::collections::BTreeMap::new();
    if let Some(t) = tenancy {
        l.insert(labels::TENANCY.to_owned(), t.to_owned());
        l.insert(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned());
    }
    Namespace {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some(l), ..ObjectMeta::default() },
        ..Namespace::default()
    }
}

//! Test fixtures: Tenancy objects built step by step.

use commons_crds::common::{ComputeResources, ResourceRequirements, Sector};
use commons_crds::tenancy::{
    Organisation, Owner, OwnerKind, PodSecurityLevel, Tenancy, TenancyNamespace, TenancyQuota, TenancySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Builds a Tenancy for tests; starts with one owner group and no namespaces (one is added on
/// `build` if none was asked for).
#[derive(Debug)]
pub struct TenancyBuilder {
    tenancy: Tenancy,
}

impl TenancyBuilder {
    pub fn new(name: &str) -> Self {
        let spec = TenancySpec {
            organisation: Organisation {
                id: format!("{name}-council"),
                display_name: format!("{name} council"),
                sector: Sector::LocalGovernment,
                cost_centre: "LG-001".into(),
                contact_email: "it@example.gov.uk".into(),
            },
            classification: Default::default(),
            owners: vec![],
            namespaces: vec![],
            quota: None,
            defaults: None,
            network_segments: vec![],
            budget: None,
            allowed: None,
            deletion_protection: None,
            pod_security: PodSecurityLevel::Restricted,
            suspended: false,
            expires_at: None,
        };
        let mut tenancy = Tenancy::new(name, spec);
        tenancy.metadata.uid = Some(format!("uid-{name}"));
        tenancy.metadata.generation = Some(1);
        TenancyBuilder { tenancy }
    }

    pub fn namespace(mut self, name: &str) -> Self {
        self.tenancy.spec.namespaces.push(TenancyNamespace { name: name.into(), labels: Default::default() });
        self
    }

    pub fn cost_centre(mut self, cc: &str) -> Self {
        self.tenancy.spec.organisation.cost_centre = cc.into();
        self
    }

    pub fn baseline(mut self) -> Self {
        self.tenancy.spec.pod_security = PodSecurityLevel::Baseline;
        self
    }

    fn quota(&mut self) -> &mut TenancyQuota {
        self.tenancy.spec.quota.get_or_insert_with(TenancyQuota::default)
    }

    pub fn quota_cpu(mut self, v: &str) -> Self {
        self.quota().cpu = Some(v.into());
        self
    }

    pub fn quota_memory(mut self, v: &str) -> Self {
        self.quota().memory = Some(v.into());
        self
    }

    pub fn quota_pods(mut self, v: i32) -> Self {
        self.quota().pods = Some(v);
        self
    }

    pub fn defaults(mut self, cpu: &str, memory: &str) -> Self {
        self.tenancy.spec.defaults = Some(ResourceRequirements {
            requests: Some(ComputeResources { cpu: Some(cpu.into()), memory: Some(memory.into()) }),
            limits: None,
        });
        self
    }

    pub fn owner_group(mut self, name: &str) -> Self {
        self.tenancy.spec.owners.push(Owner { kind: OwnerKind::Group, name: name.into(), namespace: None });
        self
    }

    pub fn owner_service_account(mut self, namespace: &str, name: &str) -> Self {
        self.tenancy.spec.owners.push(Owner {
            kind: OwnerKind::ServiceAccount,
            name: name.into(),
            namespace: Some(namespace.into()),
        });
        self
    }

    pub fn suspended(mut self) -> Self {
        self.tenancy.spec.suspended = true;
        self
    }

    pub fn expires_at(mut self, at: jiff::Timestamp) -> Self {
        self.tenancy.spec.expires_at = Some(Time(at));
        self
    }

    pub fn deletion_protection(mut self, on: bool) -> Self {
        self.tenancy.spec.deletion_protection = Some(on);
        self
    }

    pub fn build(mut self) -> Tenancy {
        if self.tenancy.spec.namespaces.is_empty() {
            self = self.namespace("main");
        }
        if self.tenancy.spec.owners.is_empty() {
            self = self.owner_group("owners");
        }
        self.tenancy
    }
}

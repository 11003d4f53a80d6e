//! The objects a Tenancy should have, computed from its spec alone (no client, no I/O).

pub use crate::naming::{namespace_name, namespaces_named};
use std::collections::BTreeMap;

use commons_crds::labels;
use commons_crds::tenancy::{OwnerKind, Tenancy};
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use super::quota::Amounts;
use crate::quantity::{Milli, format_for};

/// The ClusterRole Commons ships for tenancy owners, bound in each of their namespaces.
pub const TENANT_ADMIN_ROLE: &str = "commons:tenant-admin";
/// The name of the per-namespace ResourceQuota that carries the namespace's share.
pub const QUOTA_NAME: &str = "commons-quota";
/// The name of the per-namespace LimitRange that gives containers their defaults.
pub const LIMIT_RANGE_NAME: &str = "commons-defaults";
/// The name of the per-namespace baseline NetworkPolicy.
pub const BASELINE_POLICY_NAME: &str = "commons-baseline";
/// The name of the per-namespace RoleBinding for the tenancy's owners.
pub const OWNERS_BINDING_NAME: &str = "commons-owners";

/// Requests given to containers that set none when a Tenancy has no `defaults`.
pub const FALLBACK_REQUESTS: [(&str, &str); 2] = [("cpu", "100m"), ("memory", "128Mi")];

/// The tenancy's quota limits, by ResourceQuota resource name.
pub fn quota_limits(tenancy: &Tenancy) -> Result<Amounts, crate::quantity::QuantityError> {
    let mut out = Amounts::new();
    if let Some(q) = &tenancy.spec.quota {
        for (key, value) in
            [("requests.cpu", &q.cpu), ("requests.memory", &q.memory), ("requests.storage", &q.storage)]
        {
            if let Some(v) = value {
                out.insert(key.to_owned(), v.parse()?);
            }
        }
        if let Some(p) = q.pods {
            out.insert("pods".into(), Milli::units(i64::from(p)));
        }
        if let Some(lb) = q.load_balancers {
            out.insert("services.loadbalancers".into(), Milli::units(i64::from(lb)));
        }
    }
    Ok(out)
}

fn owner(tenancy: &Tenancy) -> Vec<OwnerReference> {
    tenancy.controller_owner_ref(&()).into_iter().collect()
}

/// Labels on everything Commons makes for a tenancy.
pub fn child_labels(tenancy: &Tenancy) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
        (labels::TENANCY.to_owned(), tenancy.name_any()),
    ])
}

fn meta(tenancy: &Tenancy, name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(child_labels(tenancy)),
        owner_references: Some(owner(tenancy)),
        ..ObjectMeta::default()
    }
}

/// The namespaces, labelled for the tenancy, its organisation and Pod Security Admission.
pub fn namespaces(tenancy: &Tenancy) -> Vec<Namespace> {
    let name = tenancy.name_any();
    let spec = &tenancy.spec;
    let level = spec.pod_security.as_str();
    tenancy
        .spec
        .namespaces
        .iter()
        .map(|ns| {
            let mut labels = ns.labels.clone();
            labels.extend(child_labels(tenancy));
            labels.insert(labels::ORGANISATION.into(), spec.organisation.id.clone());
            labels.insert(labels::SECTOR.into(), spec.organisation.sector.to_string());
            labels.insert(labels::CLASSIFICATION.into(), spec.classification.to_string());
            labels.insert(labels::COST_CENTRE.into(), label_value(&spec.organisation.cost_centre));
            labels.insert("pod-security.kubernetes.io/enforce".into(), level.into());
            labels.insert("pod-security.kubernetes.io/enforce-version".into(), "latest".into());
            labels.insert("pod-security.kubernetes.io/warn".into(), "restricted".into());
            labels.insert("pod-security.kubernetes.io/audit".into(), "restricted".into());
            Namespace {
                metadata: ObjectMeta {
                    labels: Some(labels),
                    ..meta(tenancy, &namespace_name(&name, &ns.name), None)
                },
                ..Namespace::default()
            }
        })
        .collect()
}

/// A cost centre as a label value (labels allow `[A-Za-z0-9._-]`; `/` becomes `.`).
/// `s` as a valid label value: characters a label may not hold become `.`, at most 63, starting
/// and ending alphanumeric.
pub fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '.' })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

/// The ResourceQuota of one namespace, carrying its share of the tenancy's limits.
pub fn resource_quota(tenancy: &Tenancy, namespace: &str, hard: &Amounts) -> ResourceQuota {
    ResourceQuota {
        metadata: meta(tenancy, QUOTA_NAME, Some(namespace)),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard.iter().map(|(k, v)| (k.clone(), Quantity(format_for(k, *v)))).collect()),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

/// The LimitRange that gives containers without requests or limits the tenancy's defaults.
pub fn limit_range(tenancy: &Tenancy, namespace: &str) -> LimitRange {
    let quantities =
        |r: Option<&commons_crds::common::ComputeResources>| -> Option<BTreeMap<String, Quantity>> {
            let r = r?;
            let m: BTreeMap<String, Quantity> = [("cpu", &r.cpu), ("memory", &r.memory)]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), Quantity(v.clone()))))
                .collect();
            (!m.is_empty()).then_some(m)
        };
    let (requests, limits) = match &tenancy.spec.defaults {
        Some(d) => (quantities(d.requests.as_ref()), quantities(d.limits.as_ref())),
        None => (
            Some(
                FALLBACK_REQUESTS.iter().map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned()))).collect(),
            ),
            None,
        ),
    };
    LimitRange {
        metadata: meta(tenancy, LIMIT_RANGE_NAME, Some(namespace)),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default_request: requests,
                default: limits,
                ..LimitRangeItem::default()
            }],
        }),
    }
}

/// Baseline isolation: the tenancy's namespaces (`own`: those that exist and belong to it) reach
/// each other and DNS; nothing else reaches them and they reach nothing else (network segments
/// open paths on top). Peers are chosen by namespace name, never by the `commons.dev/tenancy`
/// label, which anyone allowed to label a namespace could set.
pub fn baseline_policy(tenancy: &Tenancy, namespace: &str, own: &[String]) -> NetworkPolicy {
    let same_tenancy = NetworkPolicyPeer {
        namespace_selector: Some(namespaces_named(own.iter().cloned())),
        ..NetworkPolicyPeer::default()
    };
    let dns = NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    labels::NAMESPACE_NAME.to_owned(),
                    "kube-system".to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(
            ["UDP", "TCP"]
                .iter()
                .map(|p| NetworkPolicyPort {
                    protocol: Some((*p).into()),
                    port: Some(IntOrString::Int(53)),
                    end_port: None,
                })
                .collect(),
        ),
    };
    NetworkPolicy {
        metadata: meta(tenancy, BASELINE_POLICY_NAME, Some(namespace)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![same_tenancy.clone()]),
                ports: None,
            }]),
            egress: Some(vec![NetworkPolicyEgressRule { to: Some(vec![same_tenancy]), ports: None }, dns]),
        }),
    }
}

fn subjects(tenancy: &Tenancy) -> Vec<Subject> {
    tenancy
        .spec
        .owners
        .iter()
        .map(|o| match o.kind {
            OwnerKind::ServiceAccount => Subject {
                kind: "ServiceAccount".into(),
                name: o.name.clone(),
                namespace: o.namespace.clone(),
                api_group: None,
            },
            OwnerKind::User | OwnerKind::Group => Subject {
                kind: if o.kind == OwnerKind::User { "User".into() } else { "Group".into() },
                name: o.name.clone(),
                namespace: None,
                api_group: Some("rbac.authorization.k8s.io".into()),
            },
        })
        .collect()
}

/// Binds the tenancy's owners to the tenant-admin ClusterRole in one namespace.
pub fn owners_binding(tenancy: &Tenancy, namespace: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta(tenancy, OWNERS_BINDING_NAME, Some(namespace)),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: TENANT_ADMIN_ROLE.into(),
        },
        subjects: Some(subjects(tenancy)),
    }
}

/// The name of the per-tenancy ClusterRole (and its binding) that lets owners read their Tenancy.
pub fn reader_name(tenancy: &Tenancy) -> String {
    format!("commons:tenancy:{}", tenancy.name_any())
}

/// Lets the owners read (never change) their own Tenancy object.
pub fn reader_role(tenancy: &Tenancy) -> ClusterRole {
    ClusterRole {
        metadata: meta(tenancy, &reader_name(tenancy), None),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![commons_crds::GROUP.into()]),
            resources: Some(vec!["tenancies".into(), "tenancies/status".into()]),
            resource_names: Some(vec![tenancy.name_any()]),
            verbs: vec!["get".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
        ..ClusterRole::default()
    }
}

/// Binds the owners to [`reader_role`].
pub fn reader_binding(tenancy: &Tenancy) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(tenancy, &reader_name(tenancy), None),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: reader_name(tenancy),
        },
        subjects: Some(subjects(tenancy)),
    }
}

/// The ClusterRole every owner gets in each of their namespaces: run workloads and Commons
/// HostedServices; read (never change) the quotas, limits and policies Commons manages.
///
/// Its name and rules only: the Helm chart makes the same role with its release's labels
/// (charts/commons/templates/tenant-admin-role.yaml, rules generated from these), and Commons'
/// server-side apply then shares the rules with the chart and leaves its labels alone, so
/// neither overwrites the other and a `helm upgrade` finds the role still its own.
pub fn tenant_admin_role() -> ClusterRole {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    };
    let all = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    let read = ["get", "list", "watch"];
    ClusterRole {
        metadata: ObjectMeta { name: Some(TENANT_ADMIN_ROLE.into()), ..ObjectMeta::default() },
        rules: Some(vec![
            rule(
                &[""],
                &[
                    "pods",
                    "pods/log",
                    "pods/exec",
                    "pods/portforward",
                    "pods/attach",
                    "services",
                    // Not endpoints (nor EndpointSlices): hand-written endpoints can point a
                    // Service at any address (CVE-2021-25740, why Kubernetes' own admin and edit
                    // roles dropped them).
                    "configmaps",
                    "secrets",
                    "persistentvolumeclaims",
                    "serviceaccounts",
                ],
                &all,
            ),
            rule(
                &["apps"],
                &[
                    "deployments",
                    "deployments/scale",
                    "replicasets",
                    "replicasets/scale",
                    "statefulsets",
                    "statefulsets/scale",
                    "daemonsets",
                ],
                &all,
            ),
            rule(&["batch"], &["jobs", "cronjobs"], &all),
            rule(&["autoscaling"], &["horizontalpodautoscalers"], &all),
            rule(&["policy"], &["poddisruptionbudgets"], &all),
            rule(&["networking.k8s.io"], &["ingresses"], &all),
            rule(&[commons_crds::GROUP], &["hostedservices", "hostedservices/scale", "subscriptions"], &all),
            // Status is Commons' record (a subscription's activation and ending are billed from
            // it): read only.
            rule(&[commons_crds::GROUP], &["hostedservices/status", "subscriptions/status"], &read),
            rule(&[""], &["resourcequotas", "limitranges", "events"], &read),
            rule(&["events.k8s.io"], &["events"], &read),
            rule(&["networking.k8s.io"], &["networkpolicies"], &read),
            rule(&["rbac.authorization.k8s.io"], &["roles", "rolebindings"], &read),
        ]),
        ..ClusterRole::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::fixtures::TenancyBuilder;

    #[test]
    fn namespaces_carry_identity_and_pod_security_labels() {
        let t = TenancyBuilder::new("leeds").namespace("prod").namespace("dev").cost_centre("LG/001").build();
        let got = namespaces(&t);
        let names: Vec<_> = got.iter().map(|n| n.name_any()).collect();
        assert_eq!(names, ["leeds-prod", "leeds-dev"]);
        let l = got[0].labels();
        assert_eq!(l["commons.dev/tenancy"], "leeds");
        assert_eq!(l["commons.dev/sector"], "local-government");
        assert_eq!(l["commons.dev/classification"], "official");
        assert_eq!(l["commons.dev/cost-centre"], "LG.001");
        assert_eq!(l["pod-security.kubernetes.io/enforce"], "restricted");
        assert_eq!(l["app.kubernetes.io/managed-by"], "commons");
        let owner = &got[0].owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Tenancy", "leeds", Some(true))
        );
    }

    #[test]
    fn baseline_pod_security_can_be_chosen() {
        let t = TenancyBuilder::new("x").baseline().build();
        assert_eq!(namespaces(&t)[0].labels()["pod-security.kubernetes.io/enforce"], "baseline");
    }

    #[test]
    fn quota_limits_map_to_resource_quota_names() {
        let t = TenancyBuilder::new("x").quota_cpu("2").quota_memory("4Gi").quota_pods(10).build();
        let limits = quota_limits(&t).unwrap();
        assert_eq!(limits["requests.cpu"], Milli(2000));
        assert_eq!(limits["requests.memory"], "4Gi".parse().unwrap());
        assert_eq!(limits["pods"], Milli::units(10));
        assert!(!limits.contains_key("requests.storage"));
    }

    #[test]
    fn the_limit_range_uses_defaults_or_the_fallback() {
        let with = TenancyBuilder::new("x").defaults("200m", "256Mi").build();
        let lr = limit_range(&with, "x-a");
        let item = &lr.spec.unwrap().limits[0];
        assert_eq!(item.default_request.as_ref().unwrap()["cpu"], Quantity("200m".into()));
        let without = TenancyBuilder::new("x").build();
        let item = limit_range(&without, "x-a").spec.unwrap().limits[0].clone();
        assert_eq!(item.default_request.unwrap()["memory"], Quantity("128Mi".into()));
        assert!(item.default.is_none());
    }

    #[test]
    fn baseline_policy_admits_only_the_same_tenancy_and_dns() {
        let t = TenancyBuilder::new("leeds").build();
        let own = ["leeds-prod".to_owned(), "leeds-dev".to_owned()];
        let p = baseline_policy(&t, "leeds-prod", &own).spec.unwrap();
        assert_eq!(p.policy_types.unwrap(), ["Ingress", "Egress"]);
        let from = p.ingress.unwrap()[0].from.clone().unwrap();
        let sel = from[0].namespace_selector.clone().unwrap();
        assert!(sel.match_labels.is_none(), "never by a label a namespace's editor can set");
        let req = &sel.match_expressions.unwrap()[0];
        assert_eq!((req.key.as_str(), req.operator.as_str()), ("kubernetes.io/metadata.name", "In"));
        assert_eq!(req.values.clone().unwrap(), ["leeds-dev", "leeds-prod"]);
        let none = namespaces_named(Vec::new()).match_expressions.unwrap()[0].values.clone().unwrap();
        assert_eq!(none, ["-none"], "an empty In is invalid; a name no namespace can have instead");
        let egress = p.egress.unwrap();
        assert_eq!(egress.len(), 2);
        assert_eq!(egress[1].ports.as_ref().unwrap()[0].port, Some(IntOrString::Int(53)));
    }

    #[test]
    fn owners_become_subjects() {
        let t = TenancyBuilder::new("x").owner_group("admins").owner_service_account("ci", "deploy").build();
        let rb = owners_binding(&t, "x-a");
        let s = rb.subjects.unwrap();
        assert_eq!((s[0].kind.as_str(), s[0].name.as_str()), ("Group", "admins"));
        assert_eq!((s[1].kind.as_str(), s[1].namespace.as_deref()), ("ServiceAccount", Some("ci")));
        assert_eq!(rb.role_ref.name, TENANT_ADMIN_ROLE);
        let reader = reader_role(&t);
        assert_eq!(reader.rules.unwrap()[0].resource_names.as_ref().unwrap(), &["x"]);
    }

    #[test]
    fn the_tenant_admin_role_sets_its_name_and_rules_only() {
        // Anything more (a label, an annotation) would overwrite what the chart's copy carries.
        let role = tenant_admin_role();
        let meta = serde_json::to_value(&role.metadata).unwrap();
        assert_eq!(meta, serde_json::json!({"name": TENANT_ADMIN_ROLE}));
        assert!(role.aggregation_rule.is_none());
        assert!(!role.rules.unwrap_or_default().is_empty());
    }

    #[test]
    fn tenant_admins_cannot_write_what_commons_manages() {
        let role = tenant_admin_role();
        for rule in role.rules.unwrap() {
            let resources = rule.resources.unwrap_or_default();
            let managed = resources.iter().any(|r| {
                ["resourcequotas", "limitranges", "networkpolicies", "namespaces", "rolebindings"]
                    .contains(&r.as_str())
            });
            if managed {
                assert!(
                    rule.verbs.iter().all(|v| ["get", "list", "watch"].contains(&v.as_str())),
                    "{resources:?}: {:?}",
                    rule.verbs
                );
            }
        }
    }

    #[test]
    fn the_quota_carries_the_share_in_canonical_units() {
        let t = TenancyBuilder::new("x").build();
        let hard: Amounts =
            [("pods".into(), Milli::units(4)), ("requests.memory".into(), "6Gi".parse().unwrap())].into();
        let rq = resource_quota(&t, "x-a", &hard);
        let h = rq.spec.unwrap().hard.unwrap();
        assert_eq!((h["pods"].0.as_str(), h["requests.memory"].0.as_str()), ("4", "6Gi"));
        assert_eq!(rq.metadata.labels.unwrap()["commons.dev/tenancy"], "x");
    }
}

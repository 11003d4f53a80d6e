//! What a tenancy's workloads may use (`spec.allowed`, enforced by Commons' webhook) and deletion
//! protection (a ValidatingAdmissionPolicy Commons keeps), against the real control plane with the
//! real operator: each refusal tried for real, as the tenancy's owner where an owner could try it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::Tenancy;
use commons_e2e::{
    apply_raw, can_i, client, client_as, create_raw, delete_tenancy, install_crds, operator_metric,
    restricted_pod, tenancy_manifest, wait_for, wait_for_condition, wait_for_default_service_account,
};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(60);

async fn ready_client() -> Client {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    client
}

async fn fresh(client: &Client, manifest: Value) {
    let name = manifest["metadata"]["name"].as_str().unwrap().to_owned();
    delete_tenancy(client, &name).await.unwrap();
    apply_raw::<Tenancy>(client, None, manifest).await.unwrap();
    wait_for_condition(client, &name, "Ready", "True", None, READY).await.unwrap();
}

fn pod(name: &str, image: &str, spec: Value) -> Value {
    let mut pod = restricted_pod(name);
    pod["spec"]["containers"][0]["image"] = json!(image);
    if let (Value::Object(s), Value::Object(extra)) = (&mut pod["spec"], spec) {
        s.extend(extra);
    }
    pod
}

fn service(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["ports"] = json!([{"port": 80}]);
    spec["selector"] = json!({"app": "e2e"});
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

fn claim(name: &str, class: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
           "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}})
}

/// Creates `manifest` in `namespace` as `client`: `Ok` or the apiserver's message.
async fn create(client: &Client, namespace: &str, manifest: Value) -> Result<(), String> {
    let result = match manifest["kind"].as_str().unwrap() {
        "Pod" => create_raw::<Pod>(client, Some(namespace), manifest).await,
        "Service" => create_raw::<Service>(client, Some(namespace), manifest).await,
        _ => create_raw::<PersistentVolumeClaim>(client, Some(namespace), manifest).await,
    };
    result.map(|_| ())
}

#[tokio::test]
async fn an_owner_cannot_use_what_the_tenancy_does_not_allow() {
    let client = ready_client().await;
    for (name, value) in [("e2e-batch", 1000), ("e2e-urgent", 1_000_000)] {
        let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                        "metadata": {"name": name}, "value": value});
        apply_raw::<PriorityClass>(&client, None, pc).await.unwrap();
    }
    let allowed = json!({"allowed": {
        "priorityClasses": ["e2e-batch"],
        "tolerations": [{"key": "dedicated", "value": "gov", "effect": "NoSchedule"}],
        "registries": ["registry.example"],
        "storageClasses": ["standard"]
    }});
    fresh(&client, tenancy_manifest("e2e-policy", &["app"], allowed)).await;
    let ns = "e2e-policy-app";
    wait_for_default_service_account(&client, ns).await.unwrap();
    let owner = client_as("policy-owner", &["e2e-policy-admins"]).await.unwrap();

    let dedicated = json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gov", "effect": "NoSchedule"}]});
    let cases: Vec<(&str, Value, Option<&[&str]>)> = vec![
        (
            "an image from Docker Hub",
            pod("hub", "nginx:1.27", json!({})),
            Some(&["spec.containers[0].image", "docker.io/library/nginx:1.27", "spec.allowed.registries"]),
        ),
        ("an image from an allowed registry", pod("ok", "registry.example/app:1", json!({})), None),
        (
            "a toleration of every taint",
            pod("everywhere", "registry.example/app:1", json!({"tolerations": [{"operator": "Exists"}]})),
            Some(&["spec.tolerations[0]", "every taint"]),
        ),
        ("an allowed toleration", pod("dedicated", "registry.example/app:1", dedicated), None),
        (
            "a priority class not allowed",
            pod("urgent", "registry.example/app:1", json!({"priorityClassName": "e2e-urgent"})),
            Some(&["spec.priorityClassName", "e2e-urgent", "spec.allowed.priorityClasses"]),
        ),
        (
            "an allowed priority class",
            pod("batch", "registry.example/app:1", json!({"priorityClassName": "e2e-batch"})),
            None,
        ),
        (
            "a NodePort Service",
            service("node-port", json!({"type": "NodePort"})),
            Some(&["spec.type", "spec.allowed.nodePorts"]),
        ),
        (
            "a Service with externalIPs",
            service("external", json!({"externalIPs": ["203.0.113.10"]})),
            Some(&["spec.externalIPs[0]", "CVE-2020-8554"]),
        ),
        ("a ClusterIP Service", service("cluster-ip", json!({})), None),
        (
            "a claim of a class not allowed",
            claim("premium", "premium"),
            Some(&["spec.storageClassName", "premium"]),
        ),
        ("a claim of an allowed class", claim("standard", "standard"), None),
    ];
    let refusals_before =
        operator_metric("commons_admission_policy_violations_total{rule=\"registry\"}").unwrap();
    for (what, manifest, refused) in cases {
        let outcome = create(&owner, ns, manifest).await;
        match (refused, outcome) {
            (None, Ok(())) => {}
            (None, Err(e)) => panic!("{what}: refused: {e}"),
            (Some(_), Ok(())) => panic!("{what}: admitted"),
            (Some(words), Err(e)) => {
                assert!(e.contains("tenancy \"e2e-policy\""), "{what}: {e}");
                for w in words {
                    assert!(e.contains(w), "{what}: {e:?} does not say {w:?}");
                }
            }
        }
    }
    assert!(
        operator_metric("commons_admission_policy_violations_total{rule=\"registry\"}").unwrap()
            > refusals_before,
        "registry refusals are counted"
    );

    // An update cannot add what a create could not.
    let pods: Api<Pod> = Api::namespaced(owner.clone(), ns);
    let swap = json!({"spec": {"containers": [{"name": "app", "image": "docker.io/busybox:1"}]}});
    let err = pods.patch("ok", &PatchParams::default(), &Patch::Strategic(&swap)).await.unwrap_err();
    assert!(err.to_string().contains("docker.io/busybox:1"), "{err}");
    // Nor can an ephemeral container (added by whoever may: here the cluster admin).
    let admin_pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let debug = json!({"spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox",
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
    let err = admin_pods
        .patch_ephemeral_containers("ok", &PatchParams::default(), &Patch::Strategic(&debug))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.ephemeralContainers[0].image"), "{err}");

    // The owner cannot lift any of it: the Tenancy is the platform team's.
    assert!(!can_i("patch", "tenancies.commons.dev", None, "policy-owner", "e2e-policy-admins").unwrap());
    assert!(
        !can_i("create", "priorityclasses.scheduling.k8s.io", None, "policy-owner", "e2e-policy-admins")
            .unwrap()
    );
}

#[tokio::test]
async fn the_defaults_are_the_operators_registries_and_no_node_ports_until_allowed() {
    let client = ready_client().await;
    fresh(&client, tenancy_manifest("e2e-policy-defaults", &["app"], json!({}))).await;
    let ns = "e2e-policy-defaults-app";
    wait_for_default_service_account(&client, ns).await.unwrap();
    let owner = client_as("defaults-owner", &["e2e-policy-defaults-admins"]).await.unwrap();
    // The local cloud's operator allows registry.example and registry.example.gov.uk (e2e/commons.sh).
    let e = create(&owner, ns, pod("hub", "busybox", json!({}))).await.unwrap_err();
    assert!(e.contains("docker.io/library/busybox") && e.contains("registry.example"), "{e}");
    create(&owner, ns, pod("gov", "registry.example.gov.uk/app:2", json!({}))).await.unwrap();
    let e = create(&owner, ns, service("node-port", json!({"type": "NodePort"}))).await.unwrap_err();
    assert!(e.contains("spec.allowed.nodePorts"), "{e}");

    let allow = json!({"spec": {"allowed": {"nodePorts": true}}});
    Api::<Tenancy>::all(client.clone())
        .patch("e2e-policy-defaults", &PatchParams::default(), &Patch::Merge(&allow))
        .await
        .unwrap();
    // The webhook reads the Tenancy from its watch: it takes the change up within moments.
    wait_for("a NodePort Service admitted once allowed", Duration::from_secs(20), || {
        let owner = owner.clone();
        async move { create(&owner, ns, service("node-port", json!({"type": "NodePort"}))).await.ok() }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_protected_tenancy_is_not_deleted_until_the_protection_is_lifted() {
    let client = ready_client().await;
    let mut manifest = tenancy_manifest("e2e-protected", &["data"], json!({}));
    // Absent: on by default for a tenancy that is not a sandbox.
    manifest["spec"].as_object_mut().unwrap().remove("deletionProtection");
    fresh(&client, manifest).await;
    let api: Api<Tenancy> = Api::all(client.clone());

    let dry_run = DeleteParams { dry_run: true, ..DeleteParams::default() };
    for params in [dry_run, DeleteParams::foreground()] {
        let err = api.delete("e2e-protected", &params).await.unwrap_err().to_string();
        assert!(err.contains("protected from deletion"), "{err}");
        assert!(err.contains("kubectl patch tenancy e2e-protected --type merge"), "{err}");
    }
    let ns: Api<Namespace> = Api::all(client.clone());
    let kept = ns.get("e2e-protected-data").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none(), "the namespace was not touched");
    assert!(api.get("e2e-protected").await.unwrap().metadata.deletion_timestamp.is_none());
    // Owners cannot delete it or lift the protection in any case.
    assert!(!can_i("delete", "tenancies.commons.dev", None, "someone", "e2e-protected-admins").unwrap());

    let lift = json!({"spec": {"deletionProtection": false}});
    api.patch("e2e-protected", &PatchParams::default(), &Patch::Merge(&lift)).await.unwrap();
    api.delete("e2e-protected", &DeleteParams::foreground()).await.unwrap();
    wait_for("Tenancy e2e-protected gone", Duration::from_secs(120), || {
        let api = api.clone();
        async move { api.get_opt("e2e-protected").await.ok()?.is_none().then_some(()) }
    })
    .await
    .unwrap();

    // A sandbox (spec.expiresAt) is not protected unless it asks to be.
    let mut sandbox =
        tenancy_manifest("e2e-sandbox-gone", &["lab"], json!({"expiresAt": "2099-01-01T00:00:00Z"}));
    sandbox["spec"].as_object_mut().unwrap().remove("deletionProtection");
    fresh(&client, sandbox).await;
    api.delete("e2e-sandbox-gone", &DeleteParams::background()).await.unwrap();
}

//! The HostedService controller against the real control plane, with the real operator running
//! (kwok makes pods Running and Ready): children, the restricted profile, scale, rollout, drift,
//! refusals that create nothing, suspension, and the quota's refusals surfacing in status.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::Tenancy;
use commons_crds::hosted_service::HostedService;
use commons_e2e::{
    apply_raw, client, event_notes, install_crds, kubectl, tenancy_manifest, wait_for, wait_for_condition,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(90);

async fn ready_client() -> Client {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    client
}

async fn fresh_tenancy(client: &Client, name: &str, extra: Value) {
    commons_e2e::delete_tenancy(client, name).await.unwrap();
    apply_raw::<Tenancy>(client, None, tenancy_manifest(name, &["apps"], extra)).await.unwrap();
    wait_for_condition(client, name, "Ready", "True", None, READY).await.unwrap();
}

fn service(name: &str, extra: Value) -> Value {
    let mut spec = json!({
        "image": "registry.example.gov.uk/payroll:2.4.1",
        "replicas": 2,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        "resources": {"requests": {"cpu": "0.1", "memory": "64Mi"}}
    });
    if let (Value::Object(s), Value::Object(e)) = (&mut spec, extra) {
        s.extend(e);
    }
    json!({"apiVersion": "commons.dev/v1alpha1", "kind": "HostedService", "metadata": {"name": name}, "spec": spec})
}

/// Waits until the HostedService's condition `type_` is `status` with `reason`, for its current
/// generation.
async fn wait_for_service(
    client: &Client,
    namespace: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> HostedService {
    let api: Api<HostedService> = Api::namespaced(client.clone(), namespace);
    wait_for(&format!("HostedService {namespace}/{name} {type_}={status} {reason}"), READY, || {
        let api = api.clone();
        async move {
            let hs = api.get_opt(name).await.ok()??;
            let s = hs.status.as_ref()?;
            let c = s.conditions.iter().find(|c| c.type_ == type_)?;
            (s.observed_generation == hs.metadata.generation && c.status == status && c.reason == reason)
                .then_some(hs.clone())
        }
    })
    .await
    .unwrap()
}

async fn wait_ready_replicas(client: &Client, namespace: &str, name: &str, n: i32) -> HostedService {
    let api: Api<HostedService> = Api::namespaced(client.clone(), namespace);
    wait_for(&format!("HostedService {namespace}/{name} with {n} ready"), READY, || {
        let api = api.clone();
        async move {
            let hs = api.get_opt(name).await.ok()??;
            let s = hs.status.as_ref()?;
            let ready = s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            (ready && s.ready_replicas == n && s.replicas == n).then_some(hs.clone())
        }
    })
    .await
    .unwrap()
}

async fn deployment_replicas(client: &Client, namespace: &str, name: &str) -> Option<i32> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.unwrap().and_then(|d| d.spec?.replicas)
}

#[tokio::test]
async fn a_hosted_service_runs_restricted_scales_rolls_out_and_is_repaired() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-hs-run", json!({"organisation": {"id": "run", "displayName": "Run", "sector": "local-government", "costCentre": "LG/001", "contactEmail": "e2e@example.gov.uk"}})).await;
    let ns = "e2e-hs-run-apps";
    let first = json!({
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "admin", "port": 9000}],
        "env": [{"name": "MODE", "value": "live"}, {"name": "DEBUG", "value": "true"}],
        "probes": {"readiness": {"httpGet": {"path": "/healthz", "port": 8080}}}
    });
    apply_raw::<HostedService>(&client, Some(ns), service("payroll", first)).await.unwrap();
    let hs = wait_ready_replicas(&client, ns, "payroll", 2).await;
    let status = hs.status.clone().unwrap();
    assert_eq!(status.endpoint.as_deref(), Some("payroll.e2e-hs-run-apps.svc.cluster.local"));
    assert!(status.conditions.iter().any(|c| c.type_ == "Admitted" && c.status == "True"));

    // Its children, owned by it.
    let uid = hs.uid().unwrap();
    let owned = |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        refs.iter().any(|o| o.uid == uid && o.controller == Some(true))
    };
    let d = Api::<Deployment>::namespaced(client.clone(), ns).get("payroll").await.unwrap();
    assert!(owned(d.owner_references()));
    let svc = Api::<Service>::namespaced(client.clone(), ns).get("payroll").await.unwrap();
    assert!(owned(svc.owner_references()));
    assert_eq!(svc.spec.unwrap().ports.unwrap()[0].port, 80);
    let sa = Api::<ServiceAccount>::namespaced(client.clone(), ns).get("payroll").await.unwrap();
    assert!(owned(sa.owner_references()));
    assert_eq!(sa.automount_service_account_token, Some(false));
    let pdb = Api::<PodDisruptionBudget>::namespaced(client.clone(), ns).get("payroll").await.unwrap();
    assert!(owned(pdb.owner_references()));

    // Its pods: Running, restricted, with the label contract.
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("commons.dev/hosted-service=payroll"))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 2);
    for p in &pods {
        let l = p.labels();
        assert_eq!(l["commons.dev/tenancy"], "e2e-hs-run");
        assert_eq!(l["commons.dev/exposure"], "tenancy");
        assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.service_account_name.as_deref(), Some("payroll"));
        let sc = spec.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.as_ref().unwrap().drop.as_ref().unwrap(), &["ALL".to_owned()]);
    }

    // Nothing is written while nothing changes.
    let api: Api<HostedService> = Api::namespaced(client.clone(), ns);
    let (hs_rv, d_rv) = (
        api.get("payroll").await.unwrap().resource_version(),
        Api::<Deployment>::namespaced(client.clone(), ns).get("payroll").await.unwrap().resource_version(),
    );
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(api.get("payroll").await.unwrap().resource_version(), hs_rv, "the status was rewritten");
    assert_eq!(
        Api::<Deployment>::namespaced(client.clone(), ns).get("payroll").await.unwrap().resource_version(),
        d_rv,
        "the Deployment was rewritten"
    );

    // `kubectl scale` works through the scale subresource.
    kubectl(&["scale", "hostedservice", "payroll", "-n", ns, "--replicas=3"]).unwrap();
    wait_ready_replicas(&client, ns, "payroll", 3).await;
    let scale = kubectl(&[
        "get",
        "--raw",
        &format!("/apis/commons.dev/v1alpha1/namespaces/{ns}/hostedservices/payroll/scale"),
    ])
    .unwrap();
    let scale: Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["status"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "commons.dev/hosted-service=payroll");

    // A new image rolls out as a Deployment does: a new ReplicaSet, Progressing until done.
    let patch = json!({"spec": {"image": "registry.example.gov.uk/payroll:2.5.0"}});
    api.patch("payroll", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    wait_for_service(&client, ns, "payroll", "Progressing", "False", "RolloutComplete").await;
    let hs = wait_ready_replicas(&client, ns, "payroll", 3).await;
    assert_eq!(hs.status.unwrap().updated_replicas, 3);
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("commons.dev/hosted-service=payroll"))
        .await
        .unwrap()
        .items;
    assert_eq!(sets.len(), 2, "a changed image makes a second ReplicaSet");
    // The Deployment reports the rollout complete as soon as the new pods are ready; the old ones
    // are deleted just after.
    wait_for("only pods of the new image left", READY, || async {
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels("commons.dev/hosted-service=payroll"))
            .await
            .ok()?
            .items;
        pods.iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .all(|p| {
                p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.as_deref())
                    == Some("registry.example.gov.uk/payroll:2.5.0")
            })
            .then_some(())
    })
    .await
    .unwrap();

    // What the spec no longer says goes: an environment variable, a port; a probe changes handler.
    let fewer = json!({"spec": {
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        "env": [{"name": "MODE", "value": "live"}],
        "probes": {"readiness": {"httpGet": null, "tcpSocket": {"port": 8080}}}
    }});
    api.patch("payroll", &PatchParams::default(), &Patch::Merge(&fewer)).await.unwrap();
    wait_for("the removed env var and port gone, the probe changed", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            let d = Api::<Deployment>::namespaced(client.clone(), ns).get("payroll").await.ok()?;
            let c = d.spec?.template.spec?.containers.into_iter().next()?;
            let svc = Api::<Service>::namespaced(client, ns).get("payroll").await.ok()?;
            let done = c.env.as_ref().is_some_and(|e| e.len() == 1 && e[0].name == "MODE")
                && c.ports.as_ref().is_some_and(|p| p.len() == 1)
                && c.readiness_probe.as_ref().is_some_and(|p| p.tcp_socket.is_some() && p.http_get.is_none())
                && svc.spec?.ports?.len() == 1;
            done.then_some(())
        }
    })
    .await
    .unwrap();
    wait_ready_replicas(&client, ns, "payroll", 3).await;
    // Pods carry the tenancy's cost centre as a label can hold it.
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("commons.dev/hosted-service=payroll"))
        .await
        .unwrap()
        .items;
    assert!(
        pods.iter().all(|p| p.labels().get("commons.dev/cost-centre").map(String::as_str) == Some("LG.001"))
    );

    // Drift: a deleted Service and a hand-scaled Deployment are put back.
    Api::<Service>::namespaced(client.clone(), ns).delete("payroll", &DeleteParams::default()).await.unwrap();
    let scale_down = json!({"spec": {"replicas": 1}});
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch("payroll", &PatchParams::default(), &Patch::Merge(&scale_down))
        .await
        .unwrap();
    wait_for("the Service and the Deployment's replicas put back", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            let svc = Api::<Service>::namespaced(client.clone(), ns).get_opt("payroll").await.ok()??;
            let back = svc.metadata.deletion_timestamp.is_none()
                && deployment_replicas(&client, ns, "payroll").await == Some(3);
            back.then_some(())
        }
    })
    .await
    .unwrap();

    // Deleting the service removes what it made.
    api.delete("payroll", &DeleteParams::foreground()).await.unwrap();
    wait_for("the Deployment gone", Duration::from_secs(60), || {
        let client = client.clone();
        async move { deployment_replicas(&client, ns, "payroll").await.is_none().then_some(()) }
    })
    .await
    .unwrap();
    commons_e2e::delete_tenancy(&client, "e2e-hs-run").await.unwrap();
}

#[tokio::test]
async fn a_service_outside_a_tenancy_or_above_its_classification_is_refused_and_runs_nothing() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-hs-refuse", json!({})).await;

    // A namespace of no tenancy.
    let plain = "e2e-hs-plain";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(plain).await.unwrap().is_none() {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": plain}})).unwrap();
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
    }
    apply_raw::<HostedService>(&client, Some(plain), service("stray", json!({}))).await.unwrap();
    let hs = wait_for_service(&client, plain, "stray", "Admitted", "False", "NotInTenancy").await;
    let notes = event_notes(&client, &hs.uid().unwrap(), "Refused").await.unwrap();
    assert!(notes.iter().any(|n| n.contains("does not belong to a Tenancy")), "{notes:?}");
    assert_eq!(deployment_replicas(&client, plain, "stray").await, None, "nothing is created");
    assert!(Api::<Service>::namespaced(client.clone(), plain).get_opt("stray").await.unwrap().is_none());

    // Classified above its (OFFICIAL) tenancy: refused; lowered: it runs; raised again: removed.
    let ns = "e2e-hs-refuse-apps";
    let api: Api<HostedService> = Api::namespaced(client.clone(), ns);
    apply_raw::<HostedService>(
        &client,
        Some(ns),
        service("casework", json!({"classification": "official-sensitive"})),
    )
    .await
    .unwrap();
    let hs =
        wait_for_service(&client, ns, "casework", "Admitted", "False", "ClassificationAboveTenancy").await;
    let message =
        &hs.status.unwrap().conditions.iter().find(|c| c.type_ == "Admitted").unwrap().message.clone();
    assert!(message.contains("spec.classification official-sensitive"), "{message}");
    assert_eq!(deployment_replicas(&client, ns, "casework").await, None, "nothing is created");
    let lower = json!({"spec": {"classification": "official"}});
    api.patch("casework", &PatchParams::default(), &Patch::Merge(&lower)).await.unwrap();
    wait_ready_replicas(&client, ns, "casework", 2).await;
    let raise = json!({"spec": {"classification": "official-sensitive"}});
    api.patch("casework", &PatchParams::default(), &Patch::Merge(&raise)).await.unwrap();
    wait_for_service(&client, ns, "casework", "Admitted", "False", "ClassificationAboveTenancy").await;
    wait_for("what existed removed", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            let gone = deployment_replicas(&client, ns, "casework").await.is_none()
                && Api::<Service>::namespaced(client.clone(), ns).get_opt("casework").await.ok()?.is_none()
                && Api::<ServiceAccount>::namespaced(client.clone(), ns)
                    .get_opt("casework")
                    .await
                    .ok()?
                    .is_none();
            gone.then_some(())
        }
    })
    .await
    .unwrap();

    Api::<HostedService>::namespaced(client.clone(), plain)
        .delete("stray", &DeleteParams::default())
        .await
        .unwrap();
    namespaces.delete(plain, &DeleteParams::default()).await.unwrap();
    commons_e2e::delete_tenancy(&client, "e2e-hs-refuse").await.unwrap();
}

#[tokio::test]
async fn a_suspended_tenancy_scales_its_services_to_zero_and_back() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-hs-suspend", json!({})).await;
    let ns = "e2e-hs-suspend-apps";
    apply_raw::<HostedService>(&client, Some(ns), service("library", json!({}))).await.unwrap();
    wait_ready_replicas(&client, ns, "library", 2).await;

    apply_raw::<Tenancy>(
        &client,
        None,
        tenancy_manifest("e2e-hs-suspend", &["apps"], json!({"suspended": true})),
    )
    .await
    .unwrap();
    let hs = wait_for_service(&client, ns, "library", "Ready", "False", "TenancySuspended").await;
    assert_eq!(hs.spec.replicas, 2, "the replicas asked for are never overwritten");
    assert_eq!(deployment_replicas(&client, ns, "library").await, Some(0));
    wait_for("no pods left", READY, || {
        let client = client.clone();
        async move {
            let pods = Api::<Pod>::namespaced(client, ns)
                .list(&ListParams::default().labels("commons.dev/hosted-service=library"))
                .await
                .ok()?;
            pods.items.is_empty().then_some(())
        }
    })
    .await
    .unwrap();
    assert!(!event_notes(&client, &hs.uid().unwrap(), "ScaledDown").await.unwrap().is_empty());

    apply_raw::<Tenancy>(
        &client,
        None,
        tenancy_manifest("e2e-hs-suspend", &["apps"], json!({"suspended": false})),
    )
    .await
    .unwrap();
    wait_ready_replicas(&client, ns, "library", 2).await;
    assert_eq!(deployment_replicas(&client, ns, "library").await, Some(2));
    commons_e2e::delete_tenancy(&client, "e2e-hs-suspend").await.unwrap();
}

#[tokio::test]
async fn a_service_whose_tenancy_is_full_says_so() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-hs-full", json!({"quota": {"pods": 1, "cpu": "2", "memory": "2Gi"}})).await;
    let ns = "e2e-hs-full-apps";
    apply_raw::<HostedService>(&client, Some(ns), service("portal", json!({}))).await.unwrap();
    let hs = wait_for_service(&client, ns, "portal", "Ready", "False", "QuotaExceeded").await;
    let status = hs.status.clone().unwrap();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.message.contains("quota"), "the webhook's message is shown: {}", ready.message);
    // The one pod the quota admits runs, and the status keeps saying why the second does not.
    let api: Api<HostedService> = Api::namespaced(client.clone(), ns);
    wait_for("one replica ready while the second is refused", READY, || {
        let api = api.clone();
        async move {
            let s = api.get("portal").await.ok()?.status?;
            let quota = s.conditions.iter().any(|c| c.type_ == "Ready" && c.reason == "QuotaExceeded");
            (quota && s.ready_replicas == 1).then_some(())
        }
    })
    .await
    .unwrap();
    assert!(!event_notes(&client, &hs.uid().unwrap(), "QuotaExceeded").await.unwrap().is_empty());
    commons_e2e::delete_tenancy(&client, "e2e-hs-full").await.unwrap();
}

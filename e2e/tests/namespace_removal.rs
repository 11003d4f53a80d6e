//! Namespaces leaving a tenancy, against the real control plane with the real operator: one
//! that still holds claims or pods is kept until its deletion is confirmed, and one that is
//! terminating keeps its usage and share in the tenancy's count until it is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::Tenancy;
use commons_e2e::{
    apply_raw, client, delete_tenancy, install_crds, tenancy_event_reasons, tenancy_manifest, wait_for,
    wait_for_condition, wait_for_default_service_account,
};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(60);
const CONFIRM: &str = "commons.dev/confirm-namespace-deletion";
const HOLD: &str = "e2e.commons.dev/hold";

async fn ready_client() -> Client {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    client
}

async fn fresh(client: &Client, name: &str, namespaces: &[&str], extra: Value) {
    delete_tenancy(client, name).await.unwrap();
    apply_raw::<Tenancy>(client, None, tenancy_manifest(name, namespaces, extra)).await.unwrap();
    wait_for_condition(client, name, "Ready", "True", None, READY).await.unwrap();
    for ns in namespaces {
        wait_for_default_service_account(client, &format!("{name}-{ns}")).await.unwrap();
    }
}

async fn claim(
    client: &Client,
    namespace: &str,
    name: &str,
    size: &str,
    finalizers: &[&str],
) -> Result<(), String> {
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": name, "finalizers": finalizers},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    }))
    .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &pvc)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn release(client: &Client, namespace: &str, name: &str) {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
    let patch = json!({"metadata": {"finalizers": null}});
    let _ = api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await;
}

fn terminating_or_gone(ns: Option<Namespace>) -> bool {
    ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some())
}

#[tokio::test]
async fn a_removed_namespace_with_a_claim_is_kept_until_its_deletion_is_confirmed() {
    let client = ready_client().await;
    fresh(&client, "e2e-removal", &["keep", "data", "empty"], json!({})).await;
    claim(&client, "e2e-removal-data", "records", "1Gi", &[]).await.unwrap();

    apply_raw::<Tenancy>(&client, None, tenancy_manifest("e2e-removal", &["keep"], json!({}))).await.unwrap();
    let t = wait_for_condition(
        &client,
        "e2e-removal",
        "NamespaceDeletionPending",
        "True",
        Some("AwaitingConfirmation"),
        READY,
    )
    .await
    .unwrap();
    let status = t.status.unwrap();
    let held = status
        .namespaces
        .iter()
        .find(|n| n.name == "e2e-removal-data")
        .expect("the held namespace is listed");
    let why = held.message.clone().unwrap();
    assert!(!held.ready && why.contains("still holds 1 PersistentVolumeClaim"), "{why}");
    assert!(
        why.contains(
            "kubectl annotate tenancy e2e-removal commons.dev/confirm-namespace-deletion=e2e-removal-data"
        ),
        "{why}"
    );
    assert_eq!(status.conditions.iter().find(|c| c.type_ == "Ready").unwrap().status, "True");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // The empty one goes at once; the one with the claim stays, untouched.
    wait_for("the empty namespace deleted", READY, || {
        let namespaces = namespaces.clone();
        async move { terminating_or_gone(namespaces.get_opt("e2e-removal-empty").await.ok()?).then_some(()) }
    })
    .await
    .unwrap();
    let kept = namespaces.get("e2e-removal-data").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none(), "the namespace with a claim was deleted");
    assert!(
        tenancy_event_reasons(&client, "e2e-removal")
            .await
            .unwrap()
            .contains(&"NamespaceDeletionHeld".to_owned())
    );

    // The platform team confirms: it goes, and nothing is pending any more.
    let confirm = json!({"metadata": {"annotations": {CONFIRM: "e2e-removal-data"}}});
    Api::<Tenancy>::all(client.clone())
        .patch("e2e-removal", &PatchParams::default(), &Patch::Merge(&confirm))
        .await
        .unwrap();
    wait_for("the confirmed namespace deleted", READY, || {
        let namespaces = namespaces.clone();
        async move { terminating_or_gone(namespaces.get_opt("e2e-removal-data").await.ok()?).then_some(()) }
    })
    .await
    .unwrap();
    wait_for_condition(
        &client,
        "e2e-removal",
        "NamespaceDeletionPending",
        "False",
        Some("NothingHeld"),
        READY,
    )
    .await
    .unwrap();
    Api::<Tenancy>::all(client.clone()).delete("e2e-removal", &DeleteParams::background()).await.unwrap();
}

fn gib(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> f64 {
    let s = q.map(|q| q.0.clone()).unwrap_or_default();
    match s.strip_suffix("Gi") {
        Some(n) => n.parse().unwrap(),
        None if s == "0" || s.is_empty() => 0.0,
        None => s.parse::<f64>().unwrap() / f64::from(1u32 << 30),
    }
}

#[tokio::test]
async fn a_terminating_namespace_keeps_its_usage_and_share_until_it_is_gone() {
    let client = ready_client().await;
    fresh(&client, "e2e-leaving", &["stay", "go"], json!({"quota": {"storage": "10Gi"}})).await;
    // 6Gi held in the namespace that leaves, by a claim that outlives its deletion for a while.
    // (A first claim may meet a share of 0 until Commons moves the headroom: retried.)
    wait_for("the 6Gi claim admitted", READY, || {
        let client = client.clone();
        async move { claim(&client, "e2e-leaving-go", "archive", "6Gi", &[HOLD]).await.ok() }
    })
    .await
    .unwrap();
    wait_for("6Gi used", READY, || {
        let client = client.clone();
        async move {
            let t = Api::<Tenancy>::all(client).get("e2e-leaving").await.ok()?;
            (t.status?.quota?.used.get("requests.storage")? == "6Gi").then_some(())
        }
    })
    .await
    .unwrap();

    let confirm = json!({"metadata": {"annotations": {CONFIRM: "e2e-leaving-go"}}});
    let tenancies: Api<Tenancy> = Api::all(client.clone());
    tenancies.patch("e2e-leaving", &PatchParams::default(), &Patch::Merge(&confirm)).await.unwrap();
    apply_raw::<Tenancy>(
        &client,
        None,
        tenancy_manifest("e2e-leaving", &["stay"], json!({"quota": {"storage": "10Gi"}})),
    )
    .await
    .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    wait_for("the namespace terminating", READY, || {
        let namespaces = namespaces.clone();
        async move { namespaces.get_opt("e2e-leaving-go").await.ok()??.metadata.deletion_timestamp.map(|_| ()) }
    })
    .await
    .unwrap();

    // While it terminates, the tenancy still counts its 6Gi, and the namespace that stays cannot
    // take more than the 4Gi left: a 5Gi claim is refused, and its share is not raised past 4Gi.
    let refused = claim(&client, "e2e-leaving-stay", "big", "5Gi", &[]).await.unwrap_err();
    assert!(refused.contains("requests.storage"), "{refused}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let t = tenancies.get("e2e-leaving").await.unwrap();
    assert_eq!(
        t.status.unwrap().quota.unwrap().used["requests.storage"],
        "6Gi",
        "usage of the terminating namespace is counted"
    );
    let share = Api::<ResourceQuota>::namespaced(client.clone(), "e2e-leaving-stay")
        .get("commons-quota")
        .await
        .unwrap();
    let hard = gib(share.spec.unwrap().hard.unwrap().get("requests.storage"));
    assert!(hard <= 4.0, "the staying namespace's share is {hard}Gi while 6Gi of 10Gi are still held");

    // Once it is gone, the headroom is the staying namespace's.
    release(&client, "e2e-leaving-go", "archive").await;
    wait_for("the 5Gi claim admitted once the namespace is gone", Duration::from_secs(90), || {
        let client = client.clone();
        async move { claim(&client, "e2e-leaving-stay", "big", "5Gi", &[]).await.ok() }
    })
    .await
    .unwrap();
    tenancies.delete("e2e-leaving", &DeleteParams::background()).await.unwrap();
}

//! Field ownership of what Commons makes, against the real control plane with the real operator:
//! a new child is made with a plain create (the apiserver records an `Update` entry of Commons'
//! field manager), and once Commons changes it, every field it set is its applied field, so a
//! field it stops setting is removed, as server-side apply removes it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::Tenancy;
use commons_e2e::{
    apply_raw, client, commons_operations, delete_tenancy, install_crds, tenancy_manifest, wait_for,
    wait_for_condition,
};
use commons_operator::tenancy::desired::{
    BASELINE_POLICY_NAME, LIMIT_RANGE_NAME, OWNERS_BINDING_NAME, QUOTA_NAME,
};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

const NAME: &str = "e2e-ownership";
const READY: Duration = Duration::from_secs(60);

async fn operations<K>(api: Api<K>, name: &str) -> Vec<String>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    commons_operations(api.get(name).await.unwrap().meta())
}

/// The tenancy: before the change its namespace has labels `team: blue` and `env: test` and its
/// quota a pods limit; after, `team: blue` alone and no pods limit.
fn manifest(before: bool) -> serde_json::Value {
    let mut quota = json!({"cpu": "2", "memory": "4Gi"});
    if before {
        quota["pods"] = json!(10);
    }
    let mut t = tenancy_manifest(NAME, &["app"], json!({"quota": quota}));
    t["spec"]["namespaces"][0]["labels"] =
        if before { json!({"team": "blue", "env": "test"}) } else { json!({"team": "blue"}) };
    t
}

async fn ready(client: &Client) {
    install_crds(client).await.unwrap();
}

#[tokio::test]
async fn children_are_created_then_applied_and_a_field_commons_stops_setting_is_removed() {
    let client = client().await.unwrap();
    ready(&client).await;
    delete_tenancy(&client, NAME).await.unwrap();
    apply_raw::<Tenancy>(&client, None, manifest(true)).await.unwrap();
    wait_for_condition(&client, NAME, "Ready", "True", None, READY).await.unwrap();
    let ns = format!("{NAME}-app");
    let reader = format!("commons:tenancy:{NAME}");

    // Made with a plain create: Commons' entry of each child is an Update, and there is no other.
    let created = vec!["Update".to_owned()];
    assert_eq!(operations(Api::<Namespace>::all(client.clone()), &ns).await, created, "Namespace");
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    assert_eq!(operations(quotas.clone(), QUOTA_NAME).await, created, "ResourceQuota");
    for (kind, ops) in [
        (
            "LimitRange",
            operations(Api::<LimitRange>::namespaced(client.clone(), &ns), LIMIT_RANGE_NAME).await,
        ),
        (
            "NetworkPolicy",
            operations(Api::<NetworkPolicy>::namespaced(client.clone(), &ns), BASELINE_POLICY_NAME).await,
        ),
        (
            "RoleBinding",
            operations(Api::<RoleBinding>::namespaced(client.clone(), &ns), OWNERS_BINDING_NAME).await,
        ),
        ("ClusterRole", operations(Api::<ClusterRole>::all(client.clone()), &reader).await),
        ("ClusterRoleBinding", operations(Api::<ClusterRoleBinding>::all(client.clone()), &reader).await),
    ] {
        assert_eq!(ops, created, "{kind}");
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert_eq!(namespaces.get(&ns).await.unwrap().labels().get("team").map(String::as_str), Some("blue"));
    let hard = quotas.get(QUOTA_NAME).await.unwrap().spec.unwrap().hard.unwrap();
    assert!(hard.contains_key("pods"), "the share of pods is written: {hard:?}");

    // A label of the namespace goes from the spec, and so does the pods limit: both go from the
    // objects (the namespace is otherwise as Commons wants it: it is written because the spec
    // changed), so what the create set became Commons' applied fields before the change.
    apply_raw::<Tenancy>(&client, None, manifest(false)).await.unwrap();
    let (label_gone, pods_gone) = wait_for("the label and the pods share removed", READY, || {
        let (namespaces, quotas, ns) = (namespaces.clone(), quotas.clone(), ns.clone());
        async move {
            let n = namespaces.get(&ns).await.ok()?;
            let q = quotas.get(QUOTA_NAME).await.ok()?;
            let hard = q.spec.clone()?.hard?;
            let kept = n.labels().get("team").is_some_and(|t| t == "blue");
            (kept && !n.labels().contains_key("env") && !hard.contains_key("pods")).then_some((n, q))
        }
    })
    .await
    .unwrap();
    let applied = vec!["Apply".to_owned()];
    assert_eq!(commons_operations(label_gone.meta()), applied, "Namespace after the change");
    assert_eq!(commons_operations(pods_gone.meta()), applied, "ResourceQuota after the change");
    assert_eq!(
        label_gone.labels().get("kubernetes.io/metadata.name"),
        Some(&ns),
        "the apiserver's own name label stays"
    );
    let hard = pods_gone.spec.unwrap().hard.unwrap();
    assert!(
        hard.contains_key("requests.cpu") && hard.contains_key("requests.memory"),
        "the other shares stay: {hard:?}"
    );

    delete_tenancy(&client, NAME).await.unwrap();
}

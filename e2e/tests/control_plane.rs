//! The local control plane is real: nodes, scheduling, kwok-run pods and the controller manager.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_e2e::{client, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

async fn namespace(client: &Client, name: &str) -> Api<Namespace> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    if api.get_opt(name).await.unwrap().is_none() {
        api.create(&PostParams::default(), &ns).await.unwrap();
    }
    api
}

#[tokio::test]
async fn three_kwok_nodes_are_ready() {
    let client = client().await.unwrap();
    let nodes: Api<Node> = Api::all(client);
    let ready = wait_for("3 Ready kwok nodes", Duration::from_secs(60), || {
        let nodes = nodes.clone();
        async move {
            let list = nodes.list(&ListParams::default().labels("type=kwok")).await.ok()?;
            let ready: Vec<String> = list
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            (ready.len() >= 3).then_some(ready)
        }
    })
    .await
    .unwrap();
    assert!(ready.len() >= 3, "{ready:?}");
}

#[tokio::test]
async fn a_deployment_of_three_replicas_gets_three_ready_pods_on_kwok_nodes() {
    let client = client().await.unwrap();
    namespace(&client, "e2e-deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "e2e-deploy");
    let _ = deployments.delete("web", &DeleteParams::default()).await;
    wait_for("old deployment gone", Duration::from_secs(30), || {
        let d = deployments.clone();
        async move { d.get_opt("web").await.ok()?.is_none().then_some(()) }
    })
    .await
    .unwrap();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"}]}
            }
        }
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &deployment).await.unwrap();

    let ready = wait_for("3 ready replicas", Duration::from_secs(120), || {
        let d = deployments.clone();
        async move {
            let got = d.get("web").await.ok()?;
            let ready = got.status?.ready_replicas?;
            (ready == 3).then_some(ready)
        }
    })
    .await
    .unwrap();
    assert_eq!(ready, 3);

    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "e2e-deploy");
    let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    let running: Vec<_> = list
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    assert_eq!(
        running.len(),
        3,
        "pods: {:?}",
        list.items.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
    );
    for pod in running {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        assert!(node.starts_with("kwok-node-"), "pod scheduled to {node:?}");
    }
    deployments.delete("web", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn deleting_a_namespace_completes() {
    let client = client().await.unwrap();
    let name = format!("e2e-delete-{}", std::process::id());
    let namespaces = namespace(&client, &name).await;
    // Something for the namespace controller to clean up.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &name);
    let cm = serde_json::from_value(json!({"metadata": {"name": "data"}, "data": {"k": "v"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    namespaces.delete(&name, &DeleteParams::default()).await.unwrap();
    wait_for("namespace deletion to complete", Duration::from_secs(90), || {
        let api = namespaces.clone();
        let name = name.clone();
        async move { api.get_opt(&name).await.ok()?.is_none().then_some(()) }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_server_reports_the_pinned_kubernetes_version() {
    let client = client().await.unwrap();
    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.git_version, "v1.36.3");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "36"));
}

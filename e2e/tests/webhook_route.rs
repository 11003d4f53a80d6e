//! In a cluster the apiserver reaches the quota webhook through the chart's webhook Service, whose
//! selector includes `commons.dev/webhook=serving`: only the leader's Pod may carry it. Here two
//! Pods stand for two replicas (kwok runs them: scheduled, given addresses and reported Ready,
//! their image never pulled), the Service is the chart's own (rendered by `helm template`), and
//! the real endpoints controller decides what the Service reaches as the label moves with the lead.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use commons_e2e::{client, helm, kubectl, repo_root, wait_for};
use commons_operator::admission::route::{not_here, serve_here};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const NS: &str = "e2e-webhook-route";
const RELEASE: &str = "e2e-route";

/// The chart's webhook Service, as `helm template` renders it for the release.
fn chart_webhook_service() -> String {
    let ca = std::fs::read_to_string(commons_e2e::measure::cluster_dir().join("pki/webhook-client-ca.crt"))
        .unwrap();
    let file = std::env::temp_dir().join(format!("e2e-route-ca-{}.crt", std::process::id()));
    std::fs::write(&file, ca).unwrap();
    let rendered = helm(&[
        "template",
        RELEASE,
        &repo_root().join("charts/commons").display().to_string(),
        "-n",
        NS,
        "--show-only",
        "templates/services.yaml",
        "--set-file",
        &format!("webhook.clientCA={}", file.display()),
    ])
    .unwrap();
    let _ = std::fs::remove_file(&file);
    rendered
}

/// The addresses the Service named `service` reaches now.
async fn reached(client: &Client, service: &str) -> Vec<String> {
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .unwrap();
    let mut addresses: Vec<String> = slices
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
        .flat_map(|e| e.addresses.clone())
        .collect();
    addresses.sort();
    addresses
}

async fn address_of(pods: &Api<Pod>, name: &str) -> String {
    wait_for(&format!("{name} running with an address"), Duration::from_secs(60), || async {
        pods.get(name).await.ok()?.status?.pod_ip
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_webhook_service_reaches_the_leaders_pod_alone() {
    let client = client().await.unwrap();
    let _ = kubectl(&["delete", "namespace", NS, "--wait=true"]);
    kubectl(&["create", "namespace", NS]).unwrap();
    let mut apply = Command::new("kubectl")
        .args(["apply", "-n", NS, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    apply.stdin.take().unwrap().write_all(chart_webhook_service().as_bytes()).unwrap();
    let out = apply.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let service = format!("{RELEASE}-commons-webhook");
    let selector =
        kubectl(&["-n", NS, "get", "service", &service, "-o", "jsonpath={.spec.selector}"]).unwrap();

    // Two replicas' Pods, labelled as the chart's Deployment labels them.
    let labels: serde_json::Value = serde_json::from_str(&selector).unwrap();
    let mut pod_labels = labels.as_object().unwrap().clone();
    pod_labels.remove("commons.dev/webhook");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for name in ["replica-a", "replica-b"] {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": pod_labels},
            "spec": {"containers": [{"name": "commons", "image": "registry.example/commons:test",
                                     "ports": [{"name": "api", "containerPort": 8080},
                                               {"name": "webhook", "containerPort": 8443}]}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let (a, b) = (address_of(&pods, "replica-a").await, address_of(&pods, "replica-b").await);
    assert_ne!(a, b);
    // Before anyone leads the Service reaches nobody: the apiserver's call fails (closed).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(reached(&client, &service).await.is_empty(), "reached before anyone led");

    let reaches = |want: Vec<String>, what: &'static str| {
        let (client, service) = (client.clone(), service.clone());
        async move {
            let waited = wait_for(what, Duration::from_secs(30), || async {
                (reached(&client, &service).await == want).then_some(())
            })
            .await;
            if let Err(e) = waited {
                panic!("{e}: it reaches {:?}", reached(&client, &service).await);
            }
        }
    };
    // A leads: the Service reaches A alone.
    serve_here(&client, NS, "replica-a").await.unwrap();
    reaches(vec![a.clone()], "the Service reaching replica-a alone").await;
    // B takes over: the label leaves A (a former leader) as it comes onto B, in one call.
    serve_here(&client, NS, "replica-b").await.unwrap();
    reaches(vec![b.clone()], "the Service reaching replica-b alone").await;
    let a_labels =
        kubectl(&["-n", NS, "get", "pod", "replica-a", "-o", "jsonpath={.metadata.labels}"]).unwrap();
    assert!(!a_labels.contains("commons.dev/webhook"), "{a_labels}");
    // Repeating it changes nothing; B restarting in its Pod takes the label off until it leads.
    serve_here(&client, NS, "replica-b").await.unwrap();
    not_here(&client, NS, "replica-b").await.unwrap();
    reaches(Vec::new(), "the Service reaching nobody").await;
    kubectl(&["delete", "namespace", NS, "--wait=false"]).unwrap();
}

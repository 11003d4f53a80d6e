//! Benchmark: how long N HostedServices spread over M tenancies take to become Ready on the local
//! control plane (kwok runs their pods), created 8 at a time; Commons' apiserver writes per
//! service by kind; the writes and reconciles while they then sit idle through resyncs; and the
//! operator's memory.
//!
//! `cargo run --release -p commons-e2e --bin bench-hosted -- [SERVICES] [TENANCIES] [IDLE_SECONDS]`
//! (defaults 500, 100 and 60) against the control plane in KUBECONFIG with `commons` running; it
//! reads the operator's metrics from COMMONS_LISTEN (default 127.0.0.1:18080). It deletes what it
//! made.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use commons_crds::Tenancy;
use commons_crds::hosted_service::HostedService;
use commons_e2e::{
    E2eError, apply_raw, bench_tenancy, client, cpu_seconds, cpu_used, operator_memory_mib, operator_metric,
    operator_samples, wait_all_ready, wait_for,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Node};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

const PREFIX: &str = "bench-hs-";
/// Requests the benchmark's client makes at once.
const PARALLEL: usize = 8;
const WRITES: &str = "commons_apiserver_writes_total";
const RECONCILES: &str = "commons_reconcile_duration_seconds_count{controller=\"hostedservice\"}";

fn service(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "HostedService", "metadata": {"name": name},
        "spec": {
            "image": "registry.example.gov.uk/app:1.0",
            "replicas": 1,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
        }
    })
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), E2eError> {
    let mut args = std::env::args().skip(1);
    let services: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let tenancies: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100).max(1);
    let idle: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let client = client().await?;

    // The tenancies first (not timed: bench-tenancies measures them).
    let quota = json!({"cpu": "8", "memory": "16Gi", "pods": 50});
    let creations = (0..tenancies).map(|i| {
        let client = client.clone();
        let tenancy = bench_tenancy(&format!("{PREFIX}{i:04}"), i, &["apps"], quota.clone());
        async move { apply_raw::<Tenancy>(&client, None, tenancy).await }
    });
    let created: Vec<Result<_, E2eError>> =
        futures::stream::iter(creations).buffer_unordered(PARALLEL).collect().await;
    created.into_iter().collect::<Result<Vec<_>, _>>()?;
    wait_all_ready(&client, PREFIX, tenancies, Duration::from_secs(1800)).await?;

    // Room for the pods: simulated nodes of the benchmark's own (the local control plane's three
    // take 110 pods each, as a kubelet does by default).
    let nodes = services.div_ceil(100);
    add_nodes(&client, nodes).await?;

    // The services, spread evenly, PARALLEL at a time, until every one is Ready.
    let writes_before = operator_samples(WRITES)?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let creations =
        (0..services).map(|i| {
            let client = client.clone();
            let namespace = format!("{PREFIX}{:04}-apps", i % tenancies);
            async move {
                apply_raw::<HostedService>(&client, Some(&namespace), service(&format!("svc-{i:04}"))).await
            }
        });
    let created: Vec<Result<_, E2eError>> =
        futures::stream::iter(creations).buffer_unordered(PARALLEL).collect().await;
    created.into_iter().collect::<Result<Vec<_>, _>>()?;
    let applied = started.elapsed();
    let api: Api<HostedService> = Api::all(client.clone());
    wait_for(&format!("{services} HostedServices Ready"), Duration::from_secs(1800), || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let ready = list
                .items
                .iter()
                .filter(|hs| hs.metadata.namespace.as_deref().is_some_and(|n| n.starts_with(PREFIX)))
                .filter(|hs| {
                    hs.status.as_ref().is_some_and(|s| {
                        s.observed_generation == hs.metadata.generation
                            && s.ready_replicas == 1
                            && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                    })
                })
                .count();
            (ready == services).then_some(())
        }
    })
    .await?;
    let all_ready = started.elapsed();
    let cpu = cpu_used(&cpu_before, &cpu_seconds()?);
    let writes = delta(&writes_before, &operator_samples(WRITES)?);
    println!(
        "hosted services: {services} across {tenancies} tenancies, created {PARALLEL} at a time, 1 replica each"
    );
    println!("applied in: {:.1}s", applied.as_secs_f64());
    println!(
        "all Ready (pods Running and ready) after: {:.1}s ({:.0} ms per service)",
        all_ready.as_secs_f64(),
        all_ready.as_secs_f64() * 1000.0 / services as f64
    );
    println!("CPU meanwhile: {cpu}");
    let per_service: Vec<String> = writes
        .iter()
        .map(|(labels, n)| {
            format!(
                "{} {:.2}",
                labels.replace("kind=", "").replace(",verb=", " ").replace('"', ""),
                n / services as f64
            )
        })
        .collect();
    println!("Commons' writes per service until all were Ready: {}", per_service.join(", "));

    // Let what the creation caused settle, then measure an idle period.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (reconciles, writes) = (operator_metric(RECONCILES)?, operator_metric(WRITES)?);
    tokio::time::sleep(Duration::from_secs(idle)).await;
    println!(
        "idle for {idle}s: {} HostedService reconciles, {} apiserver writes",
        operator_metric(RECONCILES)? - reconciles,
        operator_metric(WRITES)? - writes
    );
    // The Events recorded about the services (a repeated Event is one object with a count).
    let events: Api<Event> = Api::all(client.clone());
    let mut reasons: BTreeMap<String, i32> = BTreeMap::new();
    for e in events.list(&ListParams::default().fields("involvedObject.kind=HostedService")).await?.items {
        if e.metadata.namespace.as_deref().is_some_and(|n| n.starts_with(PREFIX)) {
            *reasons.entry(e.reason.unwrap_or_default()).or_default() += e.count.unwrap_or(1).max(1);
        }
    }
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    println!("Events about the services, by reason: {}", reasons.join(", "));
    println!("operator memory: {}", operator_memory_mib()?);

    let tenancy_api: Api<Tenancy> = Api::all(client.clone());
    for i in 0..tenancies {
        let _ = tenancy_api.delete(&format!("{PREFIX}{i:04}"), &DeleteParams::background()).await;
    }
    let node_api: Api<Node> = Api::all(client.clone());
    for i in 0..nodes {
        let _ = node_api.delete(&format!("{NODE_PREFIX}{i}"), &DeleteParams::background()).await;
    }
    Ok(())
}

const NODE_PREFIX: &str = "kwok-bench-";

/// Adds `n` simulated nodes (kwok runs their pods) and waits until they are Ready.
async fn add_nodes(client: &kube::Client, n: usize) -> Result<(), E2eError> {
    let api: Api<Node> = Api::all(client.clone());
    for i in 0..n {
        let name = format!("{NODE_PREFIX}{i}");
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}
            }
        });
        api.patch(&name, &PatchParams::apply("commons-bench").force(), &Patch::Apply(&node)).await?;
    }
    wait_for(&format!("{n} benchmark nodes Ready"), Duration::from_secs(120), || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let ready = list
                .items
                .iter()
                .filter(|node| node.metadata.name.as_deref().is_some_and(|x| x.starts_with(NODE_PREFIX)))
                .filter(|node| {
                    node.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            (ready >= n).then_some(())
        }
    })
    .await
}

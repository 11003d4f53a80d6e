//! Benchmark: what Commons' quota webhook costs each pod creation, in a cluster that already holds
//! many pods outside the tenancies being decided.
//!
//! `cargo run --release -p commons-e2e --bin bench-admission -- [BACKGROUND] [TENANCIES] [PODS]`
//! (defaults 2000, 10 and 30) against the control plane in KUBECONFIG with `commons` running:
//! creates BACKGROUND pods in a namespace of no tenancy, then TENANCIES tenancies (one namespace,
//! a limit of PODS pods each) and creates PODS pods in each, 16 at a time. It prints the webhook's
//! own decision time (from `/metrics` at COMMONS_LISTEN, default 127.0.0.1:18080) and the
//! client's create latency. It deletes what it made.

use std::time::{Duration, Instant};

use commons_crds::Tenancy;
use commons_e2e::{
    E2eError, apply_raw, bench_tenancy, client, operator_metric, restricted_pod, wait_all_ready,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const PREFIX: &str = "bench-adm-";
const BACKGROUND: &str = "bench-adm-background";

async fn create_pods(
    client: &Client,
    pods: Vec<(String, String)>,
    parallel: usize,
) -> Result<Vec<Duration>, E2eError> {
    let results: Vec<Result<Duration, E2eError>> = futures::stream::iter(pods)
        .map(|(namespace, name)| {
            let client = client.clone();
            async move {
                let api: Api<Pod> = Api::namespaced(client, &namespace);
                let pod: Pod = serde_json::from_value(restricted_pod(&name))?;
                let started = Instant::now();
                api.create(&PostParams::default(), &pod).await?;
                Ok(started.elapsed())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), E2eError> {
    let mut args = std::env::args().skip(1);
    let background: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let tenancies: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let per_tenancy: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let client = client().await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let api: Api<Tenancy> = Api::all(client.clone());

    apply_raw::<Namespace>(
        &client,
        None,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BACKGROUND}}),
    )
    .await?;
    let started = Instant::now();
    create_pods(
        &client,
        (0..background).map(|i| (BACKGROUND.to_owned(), format!("bg-{i:05}"))).collect(),
        32,
    )
    .await?;
    println!("background pods: {background} (created in {:.1}s)", started.elapsed().as_secs_f64());

    for i in 0..tenancies {
        let name = format!("{PREFIX}{i:03}");
        apply_raw::<Tenancy>(&client, None, bench_tenancy(&name, i, &["app"], json!({"pods": per_tenancy})))
            .await?;
    }
    wait_all_ready(&client, PREFIX, tenancies, Duration::from_secs(600)).await?;

    // A new namespace's share is raised from 0 as the tenancy becomes Ready, and the webhook keeps
    // to the old share for 1 s after a raise (docs/tenancy.md): measure from after that.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sum = "commons_admission_duration_seconds_sum{kind=\"Pod\"}";
    let count = "commons_admission_duration_seconds_count{kind=\"Pod\"}";
    let fast = "commons_admission_duration_seconds_bucket{kind=\"Pod\",le=\"0.01\"}";
    let (sum0, count0, fast0) = (operator_metric(sum)?, operator_metric(count)?, operator_metric(fast)?);
    // Interleaved across tenancies, as independent teams would create them.
    let pods: Vec<(String, String)> = (0..per_tenancy)
        .flat_map(|p| (0..tenancies).map(move |t| (format!("{PREFIX}{t:03}-app"), format!("p-{p:04}"))))
        .collect();
    let started = Instant::now();
    let mut latencies = create_pods(&client, pods, 16).await?;
    let took = started.elapsed();
    let (decisions, spent) = (operator_metric(count)? - count0, operator_metric(sum)? - sum0);
    let slow = decisions - (operator_metric(fast)? - fast0);
    latencies.sort();
    println!(
        "tenancy pods: {} in {tenancies} tenancies, created in {:.1}s ({:.0}/s)",
        latencies.len(),
        took.as_secs_f64(),
        latencies.len() as f64 / took.as_secs_f64()
    );
    println!(
        "webhook decisions: {decisions}, mean {:.3} ms, {slow} over 10 ms",
        if decisions > 0.0 { spent * 1000.0 / decisions } else { 0.0 }
    );
    println!(
        "create latency (client): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );

    for i in 0..tenancies {
        let _ = api.delete(&format!("{PREFIX}{i:03}"), &DeleteParams::background()).await;
    }
    let _ = namespaces.delete(BACKGROUND, &DeleteParams::background()).await;
    Ok(())
}

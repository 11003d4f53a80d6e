//! Benchmark: how long N tenancies take to become Ready on the local control plane, created 8 at
//! a time, against the floor (the same client writing the same children directly, created and
//! server-side applied), with the CPU each process used and the apiserver's requests by verb and
//! resource meanwhile; how many apiserver writes the operator makes while they sit idle through
//! resyncs; its memory; and what 1,000 pod creations across 100 of them cost in reconciles and
//! writes.
//!
//! `cargo run --release -p commons-e2e --bin bench-tenancies -- [COUNT] [IDLE_SECONDS] [memory|created]`
//! (defaults 100 and 30) against the control plane in KUBECONFIG with `commons` running; it reads
//! the operator's metrics from COMMONS_LISTEN (default 127.0.0.1:18080). It deletes what it made.

use std::time::{Duration, Instant};

use commons_crds::Tenancy;
use commons_e2e::churn::pod_churn;
use commons_e2e::floor::{Write, create_directly, delete_directly};
use commons_e2e::{
    E2eError, apiserver_requests, bench_tenancy, client, cpu_seconds, cpu_used, operator_connections,
    operator_memory_mib, operator_metric, requests_between, wait_all_ready,
};
use futures::StreamExt;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

const PREFIX: &str = "bench-";
/// Requests the benchmark's client makes at once, for Commons and for the floor alike.
const PARALLEL: usize = 8;

#[tokio::main]
async fn main() -> Result<(), E2eError> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let idle: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    // The third argument: `memory` skips the floors (a run for the memory and write figures
    // alone, without the two rounds of 2 x COUNT namespaces made and deleted first); `created`
    // measures the created floor alone (the one the speed target is set against).
    let floors_wanted = match args.next().as_deref() {
        Some("memory") => vec![],
        Some("created") => vec![Write::Create],
        _ => vec![Write::Create, Write::Apply],
    };
    let client = client().await?;
    let api: Api<Tenancy> = Api::all(client.clone());
    println!("operator memory before: {}", operator_memory_mib()?);

    let quota = json!({"cpu": "8", "memory": "16Gi", "pods": 50});
    // The floor: the same client, PARALLEL tenancies at a time, creating what Commons would make
    // for each (2 namespaces with quota, LimitRange, NetworkPolicy and RoleBinding, a ClusterRole
    // and its binding) directly.
    let floor_tenancies: Vec<Tenancy> = (0..count)
        .map(|i| {
            serde_json::from_value(bench_tenancy(
                &format!("floor-{i:04}"),
                i,
                &["app", "data"],
                quota.clone(),
            ))
        })
        .collect::<Result<_, _>>()?;
    // Created (the cheapest writes there are, as Commons makes a new child), and server-side
    // applied (the apiserver then also reads the absent object and works out field ownership).
    let mut floors = Vec::new();
    for how in floors_wanted {
        let (cpu_before, requests_before) = (cpu_seconds()?, apiserver_requests()?);
        let took = create_directly(&client, &floor_tenancies, PARALLEL, how).await?;
        let cpu = cpu_used(&cpu_before, &cpu_seconds()?);
        floors.push((how, took, cpu, requests_between(&requests_before, &apiserver_requests()?, count)));
        delete_directly(&client, &floor_tenancies).await?;
    }

    // Commons: the same client, PARALLEL Tenancies at a time, until every one is Ready.
    let writes_before = writes_by_kind()?;
    let (cpu_before, requests_before) = (cpu_seconds()?, apiserver_requests()?);
    let started = Instant::now();
    // Plain creates, as the floor writes its objects.
    let creations = (0..count).map(|i| {
        let api = api.clone();
        let tenancy = bench_tenancy(&format!("{PREFIX}{i:04}"), i, &["app", "data"], quota.clone());
        async move {
            let tenancy: Tenancy = serde_json::from_value(tenancy)?;
            api.create(&PostParams::default(), &tenancy).await.map_err(E2eError::from)
        }
    });
    let created: Vec<Result<_, E2eError>> =
        futures::stream::iter(creations).buffer_unordered(PARALLEL).collect().await;
    created.into_iter().collect::<Result<Vec<_>, _>>()?;
    let applied = started.elapsed();
    wait_all_ready(&client, PREFIX, count, Duration::from_secs(1800)).await?;
    let all_ready = started.elapsed();
    let commons_cpu = cpu_used(&cpu_before, &cpu_seconds()?);
    let commons_requests = requests_between(&requests_before, &apiserver_requests()?, count);
    let writes_after = writes_by_kind()?;
    println!("tenancies: {count} (2 namespaces each), created {PARALLEL} at a time");
    println!("applied in: {:.1}s", applied.as_secs_f64());
    println!(
        "all Ready after: {:.1}s ({:.0} ms per tenancy)",
        all_ready.as_secs_f64(),
        all_ready.as_secs_f64() * 1000.0 / count as f64
    );
    for (how, took, cpu, requests) in &floors {
        println!(
            "floor (the same children {how} directly, {PARALLEL} at a time): {:.1}s; Commons / floor: {:.2}x",
            took.as_secs_f64(),
            all_ready.as_secs_f64() / took.as_secs_f64()
        );
        println!("  CPU meanwhile: {cpu}");
        println!("  apiserver requests per tenancy meanwhile (every client): {requests}");
    }
    println!("CPU while Commons made them: {commons_cpu}");
    println!("apiserver requests per tenancy meanwhile (every client): {commons_requests}");
    let per_tenancy: Vec<String> = writes_after
        .iter()
        .map(|(kind, n)| (kind, n - writes_before.get(kind).copied().unwrap_or(0.0)))
        .filter(|(_, n)| *n > 0.0)
        .map(|(kind, n)| format!("{kind} {:.2}", n / count as f64))
        .collect();
    println!("Commons' writes per tenancy until all were Ready: {}", per_tenancy.join(", "));

    // Let the writes the creation itself caused settle, then measure an idle period.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (reconciles, writes) = (
        operator_metric("commons_reconcile_duration_seconds_count{controller=\"tenancy\"}")?,
        operator_metric("commons_apiserver_writes_total")?,
    );
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let idle_reconciles =
        operator_metric("commons_reconcile_duration_seconds_count{controller=\"tenancy\"}")? - reconciles;
    let idle_writes = operator_metric("commons_apiserver_writes_total")? - writes;
    println!("idle for {idle}s: {idle_reconciles} reconciles, {idle_writes} apiserver writes");
    println!("operator memory with {count} tenancies: {}", operator_memory_mib()?);
    println!("operator connections to the apiserver: {}", operator_connections()?);

    // What pods cost: 1,000 creations over the first 100 tenancies (10 each, in their app namespace).
    let churned = count.min(100);
    let namespaces: Vec<String> = (0..churned).map(|i| format!("{PREFIX}{i:04}-app")).collect();
    let churn = pod_churn(&client, &namespaces, churned * 10).await?;
    println!("pods across {churned} tenancies: {churn}");
    // The peak now includes the webhook's copies of those pods.
    println!("operator memory after the pods: {}", operator_memory_mib()?);
    println!("operator connections to the apiserver: {}", operator_connections()?);

    for i in 0..count {
        let _ = api.delete(&format!("{PREFIX}{i:04}"), &DeleteParams::background()).await;
    }
    Ok(())
}

/// Commons' apiserver writes so far, by kind and verb (`commons_apiserver_writes_total`).
fn writes_by_kind() -> Result<std::collections::BTreeMap<String, f64>, E2eError> {
    let mut out = std::collections::BTreeMap::new();
    let children = [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    ];
    let verbs = ["create", "apply", "own"];
    let written = children.iter().flat_map(|kind| verbs.iter().map(move |verb| (*kind, *verb)));
    for (kind, verb) in written.chain([("Tenancy", "status"), ("Event", "publish")]) {
        let metric = format!("commons_apiserver_writes_total{{kind=\"{kind}\",verb=\"{verb}\"}}");
        out.insert(format!("{kind} {verb}"), operator_metric(&metric)?);
    }
    Ok(out)
}

//! Benchmark: N tenancies spread over S network segments on the local control plane — how long
//! until every segment's paths are in place, how many NetworkPolicies that takes, and how long a
//! segment reconcile takes; then what 1,000 pod creations across 100 of the tenancies cost the
//! operator in reconciles and apiserver writes.
//!
//! `cargo run --release -p commons-e2e --bin bench-segments -- [TENANCIES] [SEGMENTS]` (defaults
//! 200 and 5) against the control plane in KUBECONFIG with `commons` running (metrics from
//! COMMONS_LISTEN, default 127.0.0.1:18080). It deletes what it made.

use std::time::{Duration, Instant};

use commons_crds::{NetworkSegment, Tenancy};
use commons_e2e::churn::pod_churn;
use commons_e2e::{E2eError, apply_raw, client, operator_metric, wait_for};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), E2eError> {
    let mut args = std::env::args().skip(1);
    let tenancies: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let segments: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let client = client().await?;
    let count = || operator_metric("commons_reconcile_duration_seconds_count{controller=\"networksegment\"}");
    let sum = || operator_metric("commons_reconcile_duration_seconds_sum{controller=\"networksegment\"}");
    let (count0, sum0) = (count()?, sum()?);

    let started = Instant::now();
    for s in 0..segments {
        apply_raw::<NetworkSegment>(
            &client,
            None,
            json!({"apiVersion": "commons.dev/v1alpha1", "kind": "NetworkSegment", "metadata": {"name": format!("bench-seg-{s}")},
                   "spec": {"description": "benchmark segment", "peers": [format!("bench-seg-{}", (s + 1) % segments)],
                            "egress": [{"cidr": "51.0.0.0/8", "ports": [{"port": 443}]}]}}),
        )
        .await?;
    }
    for i in 0..tenancies {
        apply_raw::<Tenancy>(
            &client,
            None,
            json!({"apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": format!("bench-seg-t{i:04}")},
                   "spec": {"organisation": {"id": format!("body-{i}"), "displayName": format!("Body {i}"), "sector": "local-government", "costCentre": "BENCH", "contactEmail": "bench@example.gov.uk"},
                            "owners": [{"kind": "Group", "name": "bench"}], "namespaces": [{"name": "app"}], "deletionProtection": false,
                            "quota": {"pods": 20},
                            "networkSegments": [format!("bench-seg-{}", i % segments)]}}),
        )
        .await?;
    }
    // Each member namespace gets two policies per segment it is in.
    let want = i32::try_from(tenancies * 2).unwrap_or(i32::MAX);
    let api: Api<NetworkSegment> = Api::all(client.clone());
    wait_for("every segment's paths in place", Duration::from_secs(1800), || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let policies: i32 = list
                .items
                .iter()
                .filter(|s| s.metadata.name.as_deref().is_some_and(|n| n.starts_with("bench-seg-")))
                .filter_map(|s| s.status.as_ref().map(|st| st.policies))
                .sum();
            (policies == want).then_some(())
        }
    })
    .await?;
    let elapsed = started.elapsed();
    let (reconciles, seconds) = (count()? - count0, sum()? - sum0);
    println!(
        "tenancies: {tenancies} (1 namespace each) in {segments} segments, each segment peered with the next"
    );
    println!("segment NetworkPolicies: {want} (plus {tenancies} baseline policies)");
    println!("all paths in place after: {:.1}s", elapsed.as_secs_f64());
    println!(
        "segment reconciles: {reconciles}, mean {:.1} ms",
        if reconciles > 0.0 { seconds * 1000.0 / reconciles } else { 0.0 }
    );

    // What pods cost: 1,000 creations over the first 100 tenancies (10 each), all in segments.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let churned = tenancies.min(100);
    let namespaces: Vec<String> = (0..churned).map(|i| format!("bench-seg-t{i:04}-app")).collect();
    let churn = pod_churn(&client, &namespaces, churned * 10).await?;
    println!("pods across {churned} tenancies in {segments} segments: {churn}");

    let tapi: Api<Tenancy> = Api::all(client.clone());
    for i in 0..tenancies {
        let _ = tapi.delete(&format!("bench-seg-t{i:04}"), &DeleteParams::background()).await;
    }
    for s in 0..segments {
        let _ = api.delete(&format!("bench-seg-{s}"), &DeleteParams::background()).await;
    }
    Ok(())
}

//! What shared costs and unallocated capacity are computed from, recorded by the running operator's
//! meter from the real control plane into its ledger: each node's allocatable CPU and memory while
//! it exists; each consumer's share of a shared HostedService while its Subscription is Active,
//! with its weight (a change of weights ends one share and begins the next at that instant); the
//! provider's own share while it lists its own tenancy among the consumers. The arithmetic on these
//! records (splits, credits, VAT, savings) is proved on both ledgers by the periods test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::Tenancy;
use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::{Subscription, SubscriptionPhase};
use commons_e2e::{apply_raw, client, install_crds, tenancy_manifest, wait_for};
use commons_operator::ledger::{Interval, Kind, Ledger};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);
const NORTH: &str = "e2e-sc-north";
const SOUTH: &str = "e2e-sc-south";
const PROVIDER_NS: &str = "e2e-sc-north-hr";
const CONSUMER_NS: &str = "e2e-sc-south-apps";

/// Every interval of the running operator's ledger (the one `COMMONS_LEDGER` names).
async fn intervals() -> Vec<Interval> {
    let url = std::env::var("COMMONS_LEDGER").expect("COMMONS_LEDGER is set by e2e/commons.sh");
    let ledger = Ledger::open_to_read(&url).unwrap();
    let all: Vec<Interval> = ledger.overlapping(0, i64::MAX).map(|i| i.unwrap()).collect().await;
    ledger.close().await;
    all
}

/// Waits until the ledger holds an interval for `uid` that `want` accepts, and returns it.
async fn recorded(what: &str, uid: &str, want: impl Fn(&Interval) -> bool) -> Interval {
    wait_for(what, WAIT, || async { intervals().await.into_iter().find(|i| i.uid == uid && want(i)) })
        .await
        .unwrap()
}

fn milli(q: &str) -> i64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => q.parse::<i64>().unwrap() * 1000,
    }
}

async fn fresh(client: &Client) {
    for name in [NORTH, SOUTH] {
        commons_e2e::delete_tenancy(client, name).await.unwrap();
    }
    apply_raw::<Tenancy>(client, None, tenancy_manifest(NORTH, &["hr"], json!({}))).await.unwrap();
    apply_raw::<Tenancy>(client, None, tenancy_manifest(SOUTH, &["apps"], json!({}))).await.unwrap();
    for name in [NORTH, SOUTH] {
        commons_e2e::wait_for_condition(client, name, "Ready", "True", None, WAIT).await.unwrap();
    }
}

#[tokio::test]
async fn the_meter_records_node_capacity_and_the_shares_of_a_shared_service_with_their_weights() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();

    // Every node's allocatable capacity is recorded, charged to no tenancy.
    for node in Api::<Node>::all(client.clone()).list(&ListParams::default()).await.unwrap() {
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
        let cpu = milli(&allocatable["cpu"].0);
        let n = recorded(&format!("node {} recorded", node.name_any()), &node.uid().unwrap(), |i| {
            i.kind == Kind::Node && i.end_ms.is_none()
        })
        .await;
        assert_eq!((n.held.cpu_milli, n.attribution.tenancy.as_str()), (cpu, ""), "{n:?}");
        assert!(n.held.memory_milli > 0, "{n:?}");
    }

    fresh(&client).await;
    // North provides payroll to south and carries a share itself: weighted 1 to south's 3.
    let payroll = json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "HostedService", "metadata": {"name": "payroll"},
        "spec": {
            "image": "registry.example.gov.uk/payroll:1.0", "replicas": 1,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "sharing": {"consumers": [NORTH, SOUTH], "costSplit": "weighted", "weights": {NORTH: 1, SOUTH: 3}}
        }
    });
    let hs = apply_raw::<HostedService>(&client, Some(PROVIDER_NS), payroll).await.unwrap();
    let subscription = json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "Subscription", "metadata": {"name": "payroll"},
        "spec": {"service": {"namespace": PROVIDER_NS, "name": "payroll"}}
    });
    apply_raw::<Subscription>(&client, Some(CONSUMER_NS), subscription).await.unwrap();
    let subs: Api<Subscription> = Api::namespaced(client.clone(), CONSUMER_NS);
    let sub = wait_for("the subscription Active", WAIT, || async {
        let s = subs.get_opt("payroll").await.ok()??;
        (s.status.as_ref()?.phase == Some(SubscriptionPhase::Active)).then_some(s)
    })
    .await
    .unwrap();
    let active_since = sub.status.as_ref().and_then(|s| s.active_since.clone()).unwrap().0.as_millisecond();
    let sub_uid = sub.uid().unwrap();

    let share = recorded("south's share", &sub_uid, |i| i.kind == Kind::Share && i.end_ms.is_none()).await;
    assert_eq!(
        (
            share.attribution.tenancy.as_str(),
            share.namespace.as_str(),
            share.attribution.hosted_service.as_str(),
            share.held.share_weight,
            share.start_ms
        ),
        (SOUTH, CONSUMER_NS, "e2e-sc-north-hr/payroll", 3, active_since),
        "billed from the subscription's activeSince: {share:?}"
    );
    let own = recorded("north's own share", &hs.uid().unwrap(), |i| {
        i.kind == Kind::ProviderShare && i.end_ms.is_none()
    })
    .await;
    assert_eq!((own.attribution.tenancy.as_str(), own.held.share_weight), (NORTH, 1), "{own:?}");

    // New weights: south's share ends and the next begins at the same instant, with weight 5.
    Api::<HostedService>::namespaced(client.clone(), PROVIDER_NS)
        .patch(
            "payroll",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sharing": {"weights": {SOUTH: 5}}}})),
        )
        .await
        .unwrap();
    let next = recorded("south's reweighted share", &sub_uid, |i| {
        i.kind == Kind::Share && i.end_ms.is_none() && i.held.share_weight == 5
    })
    .await;
    let all = intervals().await;
    let first = all.iter().find(|i| i.key == share.key).unwrap();
    assert_eq!(first.end_ms, Some(next.start_ms), "no gap, no overlap: {first:?} then {next:?}");

    // North no longer lists itself: its own share ends. South unsubscribes: its share ends.
    Api::<HostedService>::namespaced(client.clone(), PROVIDER_NS)
        .patch(
            "payroll",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"sharing": {"consumers": [SOUTH], "costSplit": "equal", "weights": null}}}),
            ),
        )
        .await
        .unwrap();
    recorded("north's own share ended", &hs.uid().unwrap(), |i| i.key == own.key && i.end_ms.is_some()).await;
    subs.delete("payroll", &DeleteParams::default()).await.unwrap();
    recorded("south's share ended", &sub_uid, |i| i.key == next.key && i.end_ms.is_some()).await;

    for name in [SOUTH, NORTH] {
        commons_e2e::delete_tenancy(&client, name).await.unwrap();
    }
}

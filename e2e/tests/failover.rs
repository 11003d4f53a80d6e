//! Two replicas of `commons run --leader-elect` on the real control plane: the first (the scripts'
//! process) leads, the second follows and serves the API. The leader is SIGKILLed while tenancies
//! are being made and pods come and go: the second takes over within the Lease's duration plus two
//! seconds, every tenancy converges, the strict quota holds throughout (the webhook never fails
//! open: while nobody leads, pod creations are refused), and the ledger records a pod that ran
//! across the failover with no duplicate and no missing interval.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::process::Command;
use std::time::{Duration, Instant};

use commons_crds::Tenancy;
use commons_e2e::ledgers::intervals_of;
use commons_e2e::{
    apply_raw, client, delete_tenancy, install_crds, operator, restricted_pod, tenancy_manifest, wait_for,
    wait_for_condition, wait_for_default_service_account,
};
use commons_operator::ledger::{Interval, Kind};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const FIRST: &str = "127.0.0.1:18080";
const SECOND: &str = "127.0.0.1:18081";
const FIRST_WEBHOOK: &str = "127.0.0.1:18443";
const SECOND_WEBHOOK: &str = "127.0.0.1:18444";
/// `--leader-lease-seconds` as the scripts run it (the default).
const LEASE: Duration = Duration::from_secs(15);
const QUOTA_TENANCY: &str = "e2e-fo-quota";
const QUOTA_NS: &str = "e2e-fo-quota-app";
const PODS: usize = 3;

/// `commons_leading` on the replica at `listen`, or `None` when it does not answer.
fn leading(listen: &str) -> Option<bool> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "2", &format!("http://{listen}/metrics")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find_map(|l| l.strip_prefix("commons_leading ")).map(|v| v.trim() == "1")
}

/// Where the quota webhook's configuration sends the apiserver.
async fn webhook_url(client: &Client) -> String {
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get("quota.commons.dev")
        .await
        .unwrap()
        .webhooks
        .unwrap_or_default()
        .iter()
        .filter_map(|w| w.client_config.url.clone())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn create_pod(client: &Client, name: &str) -> Result<Pod, String> {
    let pod: Pod = serde_json::from_value(restricted_pod(name)).unwrap();
    Api::<Pod>::namespaced(client.clone(), QUOTA_NS)
        .create(&PostParams::default(), &pod)
        .await
        .map_err(|e| e.to_string())
}

async fn live_pods(client: &Client) -> usize {
    commons_e2e::live_pods(client, QUOTA_NS).await.unwrap()
}

/// Puts the scripts' replica back as the leader however the test ends, so the tests after it find
/// the operator they expect.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = operator("stop-follower");
        let _ = operator("start");
    }
}

/// One test at a time: both start and stop the second replica.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn the_second_replica_takes_over_when_the_leader_is_killed_and_the_quota_holds_throughout() {
    let _turn = TURN.lock().await;
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    for i in 0..6 {
        delete_tenancy(&client, &format!("e2e-fo-{i}")).await.unwrap();
    }
    delete_tenancy(&client, QUOTA_TENANCY).await.unwrap();
    apply_raw::<Tenancy>(
        &client,
        None,
        tenancy_manifest(QUOTA_TENANCY, &["app"], json!({"quota": {"pods": PODS}})),
    )
    .await
    .unwrap();
    wait_for_condition(&client, QUOTA_TENANCY, "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    wait_for_default_service_account(&client, QUOTA_NS).await.unwrap();
    // A pod that runs across the failover: its ledger record must neither break nor double.
    let long = create_pod(&client, "long").await.unwrap();
    let long_uid = long.uid().unwrap();
    wait_for("the long pod in the ledger", Duration::from_secs(60), || async {
        intervals_of(&long_uid).await.unwrap().into_iter().find(|i| i.kind == Kind::Pod).map(|_| ())
    })
    .await
    .unwrap();

    let restore = Restore;
    operator("start-follower").unwrap();
    assert_eq!(leading(FIRST), Some(true), "the scripts' replica leads");
    assert_eq!(leading(SECOND), Some(false), "the second follows");
    // Only the leader serves the webhook: the second has not even opened its port, and the
    // apiserver is sent to the first.
    assert!(
        std::net::TcpStream::connect(SECOND_WEBHOOK).is_err(),
        "a follower listens for admission reviews"
    );
    assert!(webhook_url(&client).await.contains(FIRST_WEBHOOK));
    // Both serve the API and readiness.
    for listen in [FIRST, SECOND] {
        let out = Command::new("curl").args(["-fsS", &format!("http://{listen}/readyz")]).output().unwrap();
        assert!(out.status.success(), "{listen}/readyz: {}", String::from_utf8_lossy(&out.stderr));
    }

    // Tenancies being made and pods coming and going while the leader is killed.
    let makes = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..6 {
                let t = tenancy_manifest(&format!("e2e-fo-{i}"), &["app"], json!({}));
                apply_raw::<Tenancy>(&client, None, t).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
        })
    };
    let churn = {
        let client = client.clone();
        tokio::spawn(async move {
            let (mut admitted, mut refused, mut most) = (0usize, 0usize, 0usize);
            let end = Instant::now() + LEASE + Duration::from_secs(15);
            let pods = Api::<Pod>::namespaced(client.clone(), QUOTA_NS);
            let mut running: std::collections::VecDeque<String> = std::collections::VecDeque::new();
            // Every admitted pod's uid, and whether it was deleted.
            let mut seen: Vec<(String, String, bool)> = Vec::new();
            let mut n = 0;
            while Instant::now() < end {
                n += 1;
                let name = format!("churn-{n}");
                match create_pod(&client, &name).await {
                    Ok(pod) => {
                        admitted += 1;
                        seen.push((name.clone(), pod.uid().unwrap_or_default(), false));
                        running.push_back(name);
                    }
                    Err(_) => refused += 1,
                }
                most = most.max(live_pods(&client).await);
                // Pods go too: the oldest churn pod leaves once the tenancy is full.
                if running.len() + 1 >= PODS
                    && let Some(gone) = running.pop_front()
                    && pods.delete(&gone, &DeleteParams::default().grace_period(0)).await.is_ok()
                    && let Some(s) = seen.iter_mut().find(|s| s.0 == gone)
                {
                    s.2 = true;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (admitted, refused, most, seen)
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    operator("kill").unwrap();
    let killed = Instant::now();
    // While nobody leads, the webhook's address answers nothing: the apiserver refuses (fail closed).
    let gap = create_pod(&client, "in-the-gap").await;
    if leading(SECOND) != Some(true) {
        let refused = gap.as_ref().expect_err("a pod was admitted while no replica led");
        assert!(refused.contains("quota.commons.dev"), "refused by the webhook's absence: {refused}");
    }
    wait_for("the second replica leads", LEASE + Duration::from_secs(30), || async {
        (leading(SECOND) == Some(true)).then_some(())
    })
    .await
    .unwrap();
    let took = killed.elapsed();
    println!("the second replica led {:.1}s after the first was killed", took.as_secs_f64());
    assert!(took <= LEASE + Duration::from_secs(2), "took over after {took:?}");

    // The new leader pointed the apiserver at itself.
    wait_for("the webhook configuration names the new leader", Duration::from_secs(10), || async {
        webhook_url(&client).await.contains(SECOND_WEBHOOK).then_some(())
    })
    .await
    .unwrap();
    makes.await.unwrap();
    let (admitted, refused, most, seen) = churn.await.unwrap();
    println!("pods during the failover: {admitted} admitted, {refused} refused, at most {most} at once");
    assert!(most <= PODS, "the tenancy held {most} pods against a limit of {PODS}");
    assert!(admitted > 0, "the new leader admitted nothing");
    assert!(live_pods(&client).await <= PODS);
    for i in 0..6 {
        wait_for_condition(&client, &format!("e2e-fo-{i}"), "Ready", "True", None, Duration::from_secs(60))
            .await
            .unwrap();
    }
    // Every pod admitted during the churn is in the ledger once, whichever meter saw it: its
    // intervals never overlap, and one deleted has none left open.
    for (name, uid, deleted) in &seen {
        let records = wait_for(&format!("{name} recorded"), Duration::from_secs(60), || async {
            let records: Vec<Interval> =
                intervals_of(uid).await.ok()?.into_iter().filter(|i| i.kind == Kind::Pod).collect();
            let settled = !records.is_empty() && (!*deleted || records.iter().all(|i| i.end_ms.is_some()));
            settled.then_some(records)
        })
        .await
        .unwrap_or_else(|e| panic!("{name} (deleted: {deleted}): {e}"));
        let mut spans: Vec<(i64, i64)> =
            records.iter().map(|i| (i.start_ms, i.end_ms.unwrap_or(i64::MAX))).collect();
        spans.sort_unstable();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{name}: overlapping intervals {records:?}");
    }
    println!("ledger: all {} churn pods recorded, none twice", seen.len());
    // The pod that ran throughout: one open interval, the closed ones (if the new meter split it)
    // meeting end to start, none overlapping.
    let records: Vec<Interval> =
        intervals_of(&long_uid).await.unwrap().into_iter().filter(|i| i.kind == Kind::Pod).collect();
    assert_eq!(records.iter().filter(|i| i.end_ms.is_none()).count(), 1, "one open interval: {records:?}");
    for pair in records.windows(2) {
        assert_eq!(pair[0].end_ms, Some(pair[1].start_ms), "no gap, no overlap: {records:?}");
    }

    // The scripts' replica starts again and leads once the second gives the Lease up.
    drop(restore);
    assert_eq!(leading(FIRST), Some(true));
    wait_for("the webhook configuration names the first replica again", Duration::from_secs(10), || async {
        webhook_url(&client).await.contains(FIRST_WEBHOOK).then_some(())
    })
    .await
    .unwrap();
    for i in 0..6 {
        delete_tenancy(&client, &format!("e2e-fo-{i}")).await.unwrap();
    }
    delete_tenancy(&client, QUOTA_TENANCY).await.unwrap();
}

/// The quota race with two replicas up: pods created at once in three namespaces, twice the
/// tenancy's limit in all, never exceed it, and all of it gets used.
#[tokio::test]
async fn two_replicas_never_admit_past_the_tenancy_limit() {
    const LIMIT: usize = 12;
    let _turn = TURN.lock().await;
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    delete_tenancy(&client, "e2e-fo-race").await.unwrap();
    let namespaces = ["a", "b", "c"];
    apply_raw::<Tenancy>(
        &client,
        None,
        tenancy_manifest("e2e-fo-race", &namespaces, json!({"quota": {"pods": LIMIT}})),
    )
    .await
    .unwrap();
    wait_for_condition(&client, "e2e-fo-race", "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    for n in namespaces {
        wait_for_default_service_account(&client, &format!("e2e-fo-race-{n}")).await.unwrap();
    }
    let restore = Restore;
    operator("start-follower").unwrap();
    assert_eq!((leading(FIRST), leading(SECOND)), (Some(true), Some(false)));

    let racers = namespaces.iter().map(|n| {
        let (client, ns) = (client.clone(), format!("e2e-fo-race-{n}"));
        async move {
            let pods = Api::<Pod>::namespaced(client, &ns);
            let mut made = 0;
            for i in 0..8 {
                let pod: Pod = serde_json::from_value(restricted_pod(&format!("r{i}"))).unwrap();
                if pods.create(&PostParams::default(), &pod).await.is_ok() {
                    made += 1;
                }
            }
            made
        }
    });
    let made: usize = futures::future::join_all(racers).await.into_iter().sum();
    let mut live = 0;
    for n in namespaces {
        let pods = Api::<Pod>::namespaced(client.clone(), &format!("e2e-fo-race-{n}"));
        live += pods.list(&ListParams::default()).await.unwrap().items.len();
    }
    println!("two replicas: {made} of 24 pods admitted against a limit of {LIMIT}; {live} exist");
    assert!(made <= LIMIT && live <= LIMIT, "{made} admitted, {live} exist, limit {LIMIT}");
    // And all of it can be used: creations the apiserver's own quota refused while a namespace's
    // share was being raised are asked again until the tenancy is full, and then one more is
    // refused by the webhook.
    let mut extra = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while live < LIMIT {
        assert!(Instant::now() < deadline, "the tenancy never filled: {live} of {LIMIT}");
        let ns = format!("e2e-fo-race-{}", namespaces[extra % namespaces.len()]);
        let pod: Pod = serde_json::from_value(restricted_pod(&format!("fill{extra}"))).unwrap();
        extra += 1;
        if Api::<Pod>::namespaced(client.clone(), &ns).create(&PostParams::default(), &pod).await.is_ok() {
            live += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let over: Pod = serde_json::from_value(restricted_pod("over")).unwrap();
    let refused = Api::<Pod>::namespaced(client.clone(), "e2e-fo-race-a")
        .create(&PostParams::default(), &over)
        .await
        .expect_err("a pod past the tenancy's limit")
        .to_string();
    assert!(refused.contains("quota.commons.dev"), "{refused}");
    drop(restore);
    delete_tenancy(&client, "e2e-fo-race").await.unwrap();
}

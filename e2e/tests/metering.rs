//! Metering against the real control plane, into both real ledgers at once: a `commons meter`
//! process on an SQLite file and another on the PostgreSQL the scripts started watch the same pods
//! come and go, are killed (SIGKILL) while pods start and end, and are started again; each ledger
//! must then match the pods' own timestamps. A second test takes the PostgreSQL ledger away while
//! pods come and go and shows nothing is lost once it is back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use commons_crds::{RateCard, Tenancy};
use commons_e2e::ledgers::{fresh_postgres, psql, replace_rate_card};
use commons_e2e::{
    apply_raw, client, commons, commons_binary, tenancy_manifest, wait_for, wait_for_condition,
};
use commons_operator::ledger::{Interval, Kind, Ledger};
use futures::TryStreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

/// A `commons meter` process of the test's own.
struct Meter {
    ledger: String,
    listen: String,
    child: Option<Child>,
}

impl Meter {
    fn start(ledger: &str, listen: &str) -> Meter {
        let mut m = Meter { ledger: ledger.into(), listen: listen.into(), child: None };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let log = commons_e2e::measure::cluster_dir()
            .join(format!("logs/meter-{}.log", self.listen.replace(':', "-")));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(commons_binary().unwrap())
            .args(["meter", "--ledger", &self.ledger, "--listen", &self.listen])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no chance to write anything more.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn get(&self, path: &str) -> (bool, String) {
        let out = Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", &format!("http://{}{path}", self.listen)])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
        (code == "200", body.to_owned())
    }

    async fn ready(&self) {
        wait_for(&format!("meter on {} ready", self.ledger), WAIT, || async {
            self.get("/readyz/metering").0.then_some(())
        })
        .await
        .unwrap();
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pod(name: &str) -> serde_json::Value {
    let mut p = commons_e2e::restricted_pod(name);
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "250m", "memory": "128Mi"}});
    p
}

/// Creates a pod and returns its uid and when its container started, as the kubelet recorded it.
async fn run_pod(pods: &Api<Pod>, name: &str) -> (String, i64) {
    let _ =
        pods.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await;
    wait_for(&format!("old pod {name} gone"), WAIT, || async {
        pods.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await
    .unwrap();
    pods.create(&PostParams::default(), &serde_json::from_value(pod(name)).unwrap()).await.unwrap();
    wait_for(&format!("pod {name} running"), WAIT, || async {
        let p = pods.get(name).await.ok()?;
        let started =
            p.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.running.as_ref()?;
        Some((p.metadata.uid.clone()?, started.started_at.as_ref()?.0.as_millisecond()))
    })
    .await
    .unwrap()
}

/// Deletes a pod at once and returns the instant the deletion was asked for.
async fn end_pod(pods: &Api<Pod>, name: &str) -> i64 {
    let at = Timestamp::now().as_millisecond();
    pods.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() })
        .await
        .unwrap();
    at
}

async fn pod_intervals(url: &str) -> BTreeMap<String, Vec<Interval>> {
    let ledger = Ledger::open(url).unwrap();
    let all: Vec<Interval> = ledger.overlapping(0, i64::MAX).try_collect().await.unwrap();
    ledger.close().await;
    let mut by_uid: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
    for i in all.into_iter().filter(|i| i.kind == Kind::Pod) {
        by_uid.entry(i.uid.clone()).or_default().push(i);
    }
    by_uid
}

/// Waits until `url`'s ledger holds closed intervals for every uid in `closed` and an open one
/// for every uid in `open`.
async fn settled(url: &str, closed: &[&str], open: &[&str]) -> BTreeMap<String, Vec<Interval>> {
    wait_for(&format!("ledger {url} settled"), WAIT, || async {
        let by_uid = pod_intervals(url).await;
        let ends = |uid: &str| by_uid.get(uid).map(|v| v.iter().all(|i| i.end_ms.is_some()));
        let ok = closed.iter().all(|u| ends(u) == Some(true)) && open.iter().all(|u| ends(u) == Some(false));
        ok.then_some(by_uid)
    })
    .await
    .unwrap()
}

async fn fresh_tenancy(client: &Client, name: &str) {
    commons_e2e::delete_tenancy(client, name).await.unwrap();
    let quota = json!({"quota": {"cpu": "4", "memory": "4Gi", "pods": 20}});
    apply_raw::<Tenancy>(client, None, tenancy_manifest(name, &["apps"], quota)).await.unwrap();
    wait_for_condition(client, name, "Ready", "True", None, WAIT).await.unwrap();
    commons_e2e::wait_for_default_service_account(client, &format!("{name}-apps")).await.unwrap();
}

/// One pod's single interval, checked against its own record: from its container's start, ending
/// within a second after `ended` (the deletion was asked for), holding 250m and 128Mi.
fn assert_span(by_uid: &BTreeMap<String, Vec<Interval>>, what: &str, uid: &str, started: i64, ended: i64) {
    let spans = by_uid.get(uid).unwrap_or_else(|| panic!("{what}: no interval"));
    assert_eq!(spans.len(), 1, "{what}: one interval, kept across the restart: {spans:?}");
    let i = &spans[0];
    assert_eq!(i.start_ms, started, "{what}: starts when its container started");
    let end = i.end_ms.unwrap();
    assert!(!i.estimated, "{what}: its end was observed");
    assert!(
        (ended..=ended + 1_000).contains(&end),
        "{what}: ends {} ms after its deletion was asked for",
        end - ended
    );
    assert_eq!((i.held.cpu_milli, i.held.memory_milli), (250, 128 * (1 << 20) * 1000), "{what}");
    assert_eq!(i.attribution.organisation, format!("{}-org", i.attribution.tenancy), "{what}");
    // Core-seconds as the pod's own timestamps give them, within one second of 0.25 cores.
    let core_ms = i.held.cpu_milli * (end - i.start_ms) / 1000;
    let truth = 250 * (ended - started) / 1000;
    assert!((core_ms - truth).abs() <= 250, "{what}: {core_ms} core-ms against {truth}");
}

#[tokio::test]
async fn both_ledgers_match_the_pods_own_timestamps_across_a_sigkill_of_the_meter() {
    let client = client().await.unwrap();
    apply_card(&client).await;
    fresh_tenancy(&client, "e2e-meter").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "e2e-meter-apps");
    let dir = commons_e2e::measure::cluster_dir().join("e2e-meter");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite://{}", dir.join("ledger.db").display());
    let postgres = fresh_postgres("commons_e2e_meter").unwrap();
    let mut meters = [Meter::start(&sqlite, "127.0.0.1:18091"), Meter::start(&postgres, "127.0.0.1:18092")];
    for m in &meters {
        m.ready().await;
    }

    let (a, a_started) = run_pod(&pods, "a").await;
    let (b, b_started) = run_pod(&pods, "b").await;
    let (c, c_started) = run_pod(&pods, "c").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a_ended = end_pod(&pods, "a").await;
    for url in [&sqlite, &postgres] {
        settled(url, &[&a], &[&b, &c]).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Both meters die without a word; meanwhile c ends and d starts.
    let killed = Timestamp::now().as_millisecond();
    for m in &mut meters {
        m.kill();
    }
    let c_ended = end_pod(&pods, "c").await;
    let (d, d_started) = run_pod(&pods, "d").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for m in &mut meters {
        m.spawn();
    }
    for m in &meters {
        m.ready().await;
    }
    for url in [&sqlite, &postgres] {
        settled(url, &[&a, &c], &[&b, &d]).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b_ended = end_pod(&pods, "b").await;
    let d_ended = end_pod(&pods, "d").await;

    for (m, url) in meters.iter().zip([&sqlite, &postgres]) {
        let by_uid = settled(url, &[&a, &b, &c, &d], &[]).await;
        assert_span(&by_uid, &format!("{url}: a (ended while watched)"), &a, a_started, a_ended);
        assert_span(&by_uid, &format!("{url}: b (running across the kill)"), &b, b_started, b_ended);
        assert_span(&by_uid, &format!("{url}: d (started while no meter ran)"), &d, d_started, d_ended);
        // c went while nobody watched: closed at the last instant the ledger was complete,
        // marked estimated, and never later than the meter's death.
        let c_span = &by_uid[&c][0];
        let end = c_span.end_ms.unwrap();
        assert_eq!(c_span.start_ms, c_started, "{url}: c starts when its container started");
        assert!(c_span.estimated, "{url}: c's end is estimated");
        assert!(
            end <= killed && end >= killed - 5_000,
            "{url}: c ended {} ms before the kill (deleted {} ms after)",
            killed - end,
            c_ended - killed
        );
        assert!(m.metric("commons_meter_intervals_closed_total{end=\"estimated\"}") >= 1.0, "{url}: counted");
        report_matches_the_ledger(url, &by_uid).await;
    }
    let _ = Api::<RateCard>::all(client.clone()).delete(CARD, &DeleteParams::default()).await;
}

/// The test's rate card: one currency unit per core-second and 0.01 per GiB-second, 10% overhead,
/// in force since yesterday (so amounts of a few seconds are worth checking to the penny).
const CARD: &str = "e2e-meter-card";

async fn apply_card(client: &Client) {
    let yesterday = Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let card = json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "RateCard", "metadata": {"name": CARD},
        "spec": {"currency": "GBP", "effectiveFrom": yesterday.to_string(), "platformOverheadPercent": "10",
            "prices": {"cpuCoreHour": "3600", "memoryGibHour": "36", "storageGibHour": "0", "loadBalancerHour": "0"}}
    });
    // Rate cards cannot be changed: one left by an earlier run is replaced.
    replace_rate_card(client, card).await.unwrap();
}

/// `commons report` for this month agrees with the intervals in the ledger, to the penny.
async fn report_matches_the_ledger(url: &str, by_uid: &BTreeMap<String, Vec<Interval>>) {
    let period = Timestamp::now().strftime("%Y-%m").to_string();
    let out =
        commons(&["report", "--period", &period, "--by", "tenancy", "--format", "json", "--ledger", url])
            .unwrap();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let line = |charge: &str| {
        report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["group"] == "e2e-meter" && l["charge"] == charge)
            .unwrap_or_else(|| panic!("{url}: no {charge} line for e2e-meter in {out}"))
            .clone()
    };
    // Exact core-seconds and GiB-seconds from the intervals themselves.
    let (mut core_ms, mut gib_ms) = (Decimal::ZERO, Decimal::ZERO);
    for i in by_uid.values().flatten().filter(|i| i.attribution.tenancy == "e2e-meter") {
        let ms = Decimal::from(i.end_ms.unwrap() - i.start_ms);
        core_ms += Decimal::new(i.held.cpu_milli, 3) * ms;
        gib_ms += Decimal::from(i.held.memory_milli) / Decimal::from(1000_i64 << 30) * ms;
    }
    let hours = |unit_ms: Decimal| (unit_ms / Decimal::from(3_600_000)).normalize();
    let (cpu, memory) = (line("cpu"), line("memory"));
    assert_eq!(
        cpu["quantity"].as_str().unwrap().parse::<Decimal>().unwrap(),
        hours(core_ms),
        "{url}: core-hours"
    );
    assert_eq!(
        memory["quantity"].as_str().unwrap().parse::<Decimal>().unwrap(),
        hours(gib_ms),
        "{url}: GiB-hours"
    );
    let cpu_amount =
        (core_ms / Decimal::from(1000)).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let memory_amount =
        (gib_ms / Decimal::from(100_000)).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let overhead = ((core_ms / Decimal::from(1000) + gib_ms / Decimal::from(100_000)) / Decimal::from(10))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(cpu["amount"], cpu_amount.to_string(), "{url}: 1 per core-second");
    assert_eq!(memory["amount"], memory_amount.to_string(), "{url}: 0.01 per GiB-second");
    assert_eq!(line("platform-overhead")["amount"], overhead.to_string(), "{url}: 10% overhead");
    assert_eq!(report["currency"], "GBP");
    let table = commons(&["report", "--period", &period, "--ledger", url]).unwrap();
    assert!(table.contains("e2e-meter") && table.contains("Total:"), "{table}");
    let csv = commons(&["report", "--period", &period, "--format", "csv", "--ledger", url]).unwrap();
    assert!(
        csv.starts_with("group,organisation_name,charge,quantity,unit,amount,currency,corrects\n"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "e2e-meter,e2e-meter organisation,cpu,{},core-hours,{cpu_amount},GBP,\n",
            hours(core_ms)
        )),
        "{csv}"
    );
}

#[tokio::test]
async fn while_the_ledger_is_down_metering_says_why_and_nothing_is_lost_once_it_is_back() {
    let client = client().await.unwrap();
    fresh_tenancy(&client, "e2e-meter-down").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "e2e-meter-down-apps");
    let db = "commons_e2e_meter_down";
    let url = fresh_postgres(db).unwrap();
    let admin = std::env::var("COMMONS_E2E_POSTGRES").unwrap();
    let meter = Meter::start(&url, "127.0.0.1:18093");
    meter.ready().await;
    let (a, a_started) = run_pod(&pods, "a").await;
    settled(&url, &[], &[&a]).await;

    // The database refuses the meter's connections from now on.
    psql(&admin, &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false")).unwrap();
    psql(&admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"))
        .unwrap();
    let a_ended = end_pod(&pods, "a").await;
    let (b, b_started) = run_pod(&pods, "b").await;
    let reason = wait_for("metering reported unready", WAIT, || async {
        let (ok, body) = meter.get("/readyz/metering");
        (!ok).then_some(body)
    })
    .await
    .unwrap();
    assert!(
        reason.contains("postgres ledger cannot be written") && reason.contains("kept in memory"),
        "{reason}"
    );
    let (ready, body) = meter.get("/readyz");
    assert!(ready && body.contains("degraded"), "the process stays ready, metering degraded: {body}");
    assert!(meter.metric("commons_meter_pending_writes") >= 1.0);
    assert_eq!(meter.metric("commons_meter_ledger_up"), 0.0);

    psql(&admin, &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true")).unwrap();
    meter.ready().await;
    let b_ended = end_pod(&pods, "b").await;
    let by_uid = settled(&url, &[&a, &b], &[]).await;
    assert_span(&by_uid, "a (ended while the ledger was down)", &a, a_started, a_ended);
    assert_span(&by_uid, "b (started while the ledger was down)", &b, b_started, b_ended);
    assert_eq!(meter.metric("commons_meter_ledger_up"), 1.0);
}

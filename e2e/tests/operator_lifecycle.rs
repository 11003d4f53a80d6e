//! Behaviour across the operator's own life: idle resyncs and restarts write nothing, a Tenancy
//! deleted while the operator is down is still cleaned up, and while it is down no pod enters a
//! tenancy unchecked (the quota webhook fails closed); after the apiserver restarts, a new Tenancy
//! is served within seconds, and an outage past the renew deadline restarts the leader in place;
//! a rotated webhook certificate is served without a restart. These
//! tests stop and restart
//! the operator, so they live in their own test binary and run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;
use std::time::Duration;

use commons_crds::Tenancy;
use commons_e2e::{
    apply_raw, client, install_crds, operator, operator_metric, operator_samples, restricted_pod, wait_for,
    wait_for_condition, wait_for_default_service_account,
};
use futures::FutureExt;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Pod, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::Mutex;

/// The tests in this file take turns: they stop and start the one operator.
static TURN: Mutex<()> = Mutex::const_new(());

fn tenancy(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": name},
        "spec": {
            "organisation": {"id": "idle-council", "displayName": "Idle Council", "sector": "local-government", "costCentre": "IDLE-1", "contactEmail": "idle@example.gov.uk"},
            "owners": [{"kind": "Group", "name": "idle-admins"}],
            "deletionProtection": false,
            "namespaces": [{"name": "one"}, {"name": "two"}],
            "quota": {"cpu": "4", "memory": "8Gi", "pods": 20}
        }
    })
}

/// Every object Commons manages for `name`, by kind/namespace/name, with its resourceVersion.
async fn resource_versions(client: &Client, name: &str) -> BTreeMap<String, String> {
    let selector = ListParams::default().labels(&format!("commons.dev/tenancy={name}"));
    let mut out = BTreeMap::new();
    let t: Api<Tenancy> = Api::all(client.clone());
    out.insert("Tenancy".into(), t.get(name).await.unwrap().resource_version().unwrap());
    macro_rules! collect {
        ($kind:ty, $label:expr) => {
            for o in Api::<$kind>::all(client.clone()).list(&selector).await.unwrap().items {
                out.insert(
                    format!("{}/{}/{}", $label, o.namespace().unwrap_or_default(), o.name_any()),
                    o.resource_version().unwrap(),
                );
            }
        };
    }
    collect!(Namespace, "Namespace");
    // A quota's status is the controller manager's (its usage, recounted on its own schedule):
    // what Commons writes is its spec, with the time of Commons' last change in managedFields.
    for q in Api::<ResourceQuota>::all(client.clone()).list(&selector).await.unwrap().items {
        let commons_wrote = q
            .managed_fields()
            .iter()
            .filter(|m| m.manager.as_deref() == Some(commons_crds::labels::MANAGER))
            .map(|m| format!("{:?}", m.time))
            .collect::<Vec<_>>();
        out.insert(
            format!("ResourceQuota/{}/{}", q.namespace().unwrap_or_default(), q.name_any()),
            format!("{} {commons_wrote:?}", serde_json::to_string(&q.spec).unwrap()),
        );
    }
    collect!(LimitRange, "LimitRange");
    collect!(NetworkPolicy, "NetworkPolicy");
    collect!(RoleBinding, "RoleBinding");
    out
}

/// Commons' ResourceQuotas whose `used.pods` is not yet the number of pods in their namespace.
async fn quotas_behind(client: &Client, namespaces: &[String], pods: &[Pod]) -> Vec<String> {
    let quotas = Api::<ResourceQuota>::all(client.clone()).list(&ListParams::default()).await.unwrap().items;
    quotas
        .iter()
        .filter(|q| namespaces.contains(&q.namespace().unwrap_or_default()))
        .filter_map(|q| {
            let ns = q.namespace().unwrap_or_default();
            let used = q.status.as_ref()?.used.as_ref()?.get("pods")?.0.clone();
            let running = pods
                .iter()
                .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
                .filter(|p| {
                    !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
                })
                .count();
            (used != running.to_string())
                .then(|| format!("quota {ns}/{} counts {used} pods, {running} there", q.name_any()))
        })
        .collect()
}

/// Every Tenancy's resourceVersion.
async fn tenancy_versions(client: &Client) -> BTreeMap<String, String> {
    let all = Api::<Tenancy>::all(client.clone()).list(&ListParams::default()).await.unwrap().items;
    all.into_iter().map(|t| (t.name_any(), t.resource_version().unwrap_or_default())).collect()
}

fn reconciles() -> f64 {
    operator_metric("commons_reconcile_duration_seconds_count{controller=\"tenancy\"}").unwrap()
}

fn writes() -> f64 {
    operator_metric("commons_apiserver_writes_total").unwrap()
}

/// Waits (up to three minutes) until nothing Commons manages is in motion: nothing being deleted
/// (a namespace or pod still terminating changes its tenancy's status when it goes), quotas caught
/// up, no admission reservation held, no other tenancy made in the last two minutes; and the
/// operator has then written nothing for ten seconds.
async fn quiet(client: &Client) {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let selector = ListParams::default().labels("commons.dev/tenancy");
    loop {
        let namespaces = Api::<Namespace>::all(client.clone()).list(&selector).await.unwrap().items;
        let tenancies = Api::<Tenancy>::all(client.clone()).list(&ListParams::default()).await.unwrap().items;
        // Pods going too: the quota they held leaves their tenancy's status when they are gone.
        let tenancy_namespaces: Vec<String> = namespaces.iter().map(|n| n.name_any()).collect();
        let pods = Api::<Pod>::all(client.clone()).list(&ListParams::default()).await.unwrap().items;
        let going: Vec<String> = namespaces
            .iter()
            .map(|n| (n.metadata.deletion_timestamp.is_some(), n.name_any()))
            .chain(tenancies.iter().map(|t| (t.metadata.deletion_timestamp.is_some(), t.name_any())))
            .chain(
                pods.iter()
                    .filter(|p| tenancy_namespaces.contains(&p.namespace().unwrap_or_default()))
                    .map(|p| (p.metadata.deletion_timestamp.is_some(), format!("pod {}", p.name_any()))),
            )
            .filter_map(|(deleting, name)| deleting.then_some(name))
            // And the quota controller caught up with pods that went: a ResourceQuota still
            // counting a pod that is gone changes its tenancy's status.quota.used when it does.
            .chain(quotas_behind(client, &tenancy_namespaces, &pods).await)
            // A tenancy an earlier test made moments ago may still settle once (its first quota
            // accounting, reservations the webhook made for its pods running out): let it.
            .chain(tenancies.iter().filter_map(|t| {
                let made = t.metadata.creation_timestamp.as_ref()?.0;
                let age = jiff::Timestamp::now().duration_since(made);
                (age < jiff::SignedDuration::from_secs(120) && t.name_any() != "e2e-idle")
                    .then(|| format!("tenancy {} made {}s ago", t.name_any(), age.as_secs()))
            }))
            .chain((operator_metric("commons_admission_reservations ").unwrap_or(0.0) > 0.0).then(|| {
                format!(
                    "admission reservations still held ({} sweeps done; settled: {:?})",
                    operator_metric("commons_admission_sweeps_total").unwrap_or(-1.0),
                    operator_samples("commons_admission_reservations_settled_total").unwrap_or_default()
                )
            }))
            .collect();
        if going.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still being deleted after three minutes: {going:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut last = writes();
    let mut since = std::time::Instant::now();
    while since.elapsed() < Duration::from_secs(10) {
        assert!(std::time::Instant::now() < deadline, "the operator kept writing for three minutes");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = writes();
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        }
    }
}

/// The write counters (by kind and verb) that moved between two readings.
fn changed(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> String {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {} -> {v}", before.get(k).copied().unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn an_idle_tenancy_is_never_written_across_resyncs_and_an_operator_restart() {
    let _turn = TURN.lock().await;
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    apply_raw::<Tenancy>(&client, None, tenancy("e2e-idle")).await.unwrap();
    wait_for_condition(&client, "e2e-idle", "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    // Let any reconcile triggered by our own writes settle, and whatever the tests before this one
    // left in motion (namespaces still terminating, finalizers being removed) finish: the counter
    // below is the whole operator's.
    quiet(&client).await;
    let before = resource_versions(&client, "e2e-idle").await;
    assert_eq!(before.len(), 1 + 2 * 5, "the Tenancy and 5 objects in each of 2 namespaces: {before:?}");

    // Idle resyncs (the test operator resyncs every 10 s): reconciles happen, writes do not.
    let (reconciles_before, writes_before) = (reconciles(), writes());
    let samples_before = operator_samples("commons_apiserver_writes_total").unwrap();
    let idle_before = tenancy_versions(&client).await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(
        reconciles() >= reconciles_before + 2.0,
        "no resync happened: {reconciles_before} -> {}",
        reconciles()
    );
    let after = operator_samples("commons_apiserver_writes_total").unwrap();
    let idle_after = tenancy_versions(&client).await;
    assert_eq!(
        writes(),
        writes_before,
        "an idle resync wrote to the apiserver: {}; tenancies changed: {:?}",
        changed(&samples_before, &after),
        idle_after.iter().filter(|(n, v)| idle_before.get(*n) != Some(v)).map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert_eq!(resource_versions(&client, "e2e-idle").await, before);

    // A restart re-reads everything and reconciles every tenancy: still nothing written.
    let tenancies_before = tenancy_versions(&client).await;
    operator("restart").unwrap();
    wait_for("the restarted operator reconciles", Duration::from_secs(60), || async {
        (reconciles() >= 1.0).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let tenancies_after = tenancy_versions(&client).await;
    assert_eq!(
        writes(),
        0.0,
        "the restarted operator wrote to the apiserver: {:?}; tenancies changed: {:?}",
        operator_samples("commons_apiserver_writes_total").unwrap(),
        tenancies_after
            .iter()
            .filter(|(n, v)| tenancies_before.get(*n) != Some(v))
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    );
    assert_eq!(resource_versions(&client, "e2e-idle").await, before);

    Api::<Tenancy>::all(client.clone()).delete("e2e-idle", &DeleteParams::background()).await.unwrap();
}

#[tokio::test]
async fn a_tenancy_deleted_while_the_operator_is_down_is_cleaned_up() {
    let _turn = TURN.lock().await;
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    apply_raw::<Tenancy>(&client, None, tenancy("e2e-outage")).await.unwrap();
    wait_for_condition(&client, "e2e-outage", "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    // A pod is refused without its ServiceAccount before any webhook is asked: wait for the
    // controller manager to make it.
    wait_for_default_service_account(&client, "e2e-outage-one").await.unwrap();

    operator("stop").unwrap();
    // Whatever happens, the operator is started again for the tests that follow.
    let result = std::panic::AssertUnwindSafe(async {
        // With the quota webhook unreachable, pods in a tenancy are refused rather than admitted
        // unchecked; namespaces outside tenancies are unaffected.
        let pod: Pod = serde_json::from_value(restricted_pod("unchecked")).unwrap();
        let refused = Api::<Pod>::namespaced(client.clone(), "e2e-outage-one")
            .create(&PostParams::default(), &pod)
            .await;
        match refused {
            Err(kube::Error::Api(s)) => {
                assert!(s.message.contains(r#"failed calling webhook "quota.commons.dev""#), "{}", s.message)
            }
            other => panic!("a pod was not refused with the webhook down: {other:?}"),
        }
        let outside: Api<Pod> = Api::namespaced(client.clone(), "default");
        let mut plain = pod.clone();
        plain.metadata.name = Some(format!("e2e-outside-{}", std::process::id()));
        outside.create(&PostParams::default(), &plain).await.unwrap();
        outside.delete(plain.metadata.name.as_deref().unwrap(), &DeleteParams::default()).await.unwrap();

        Api::<Tenancy>::all(client.clone()).delete("e2e-outage", &DeleteParams::foreground()).await.unwrap();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        wait_for("namespaces and tenancy gone with the operator down", Duration::from_secs(120), || {
            let (namespaces, tenancies) = (namespaces.clone(), Api::<Tenancy>::all(client.clone()));
            async move {
                let left = namespaces
                    .list(&ListParams::default().labels("commons.dev/tenancy=e2e-outage"))
                    .await
                    .ok()?;
                let t = tenancies.get_opt("e2e-outage").await.ok()?;
                (left.items.is_empty() && t.is_none()).then_some(())
            }
        })
        .await
    })
    .catch_unwind()
    .await;
    operator("start").unwrap();
    match result {
        Ok(done) => done.unwrap(),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// After the kube-apiserver restarts, Commons notices, restarts its watches from a fresh list, and
/// a Tenancy created at once becomes Ready within seconds (watches resumed across the restart were
/// seen to sit silent for 25-30 s).
#[tokio::test]
async fn a_tenancy_created_right_after_an_apiserver_restart_is_ready_within_seconds() {
    let _turn = TURN.lock().await;
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    // A name of its own per run: a namespace of an earlier run may still be terminating.
    let name = format!("e2e-restart-{}", std::process::id());
    let restarts_before = operator_metric("commons_watch_restarts_total").unwrap();
    let in_place_before = restarts_in_place();
    operator("restart-apiserver").unwrap();
    let client = commons_e2e::client().await.unwrap();
    let started = std::time::Instant::now();
    apply_raw::<Tenancy>(&client, None, tenancy(&name)).await.unwrap();
    let ready = wait_for_condition(&client, &name, "Ready", "True", None, Duration::from_secs(60)).await;
    let took = started.elapsed();
    ready.unwrap();
    eprintln!("Ready {took:?} after the apiserver restart");
    assert!(
        took < Duration::from_secs(15),
        "a Tenancy took {took:?} to become Ready after an apiserver restart"
    );
    // Its watches restart from a fresh list; or, when the apiserver was down past the renew
    // deadline (10 s), the whole process started again in place, which lists afresh too.
    wait_for("the watches are restarted once the apiserver has settled", Duration::from_secs(30), || async {
        (operator_metric("commons_watch_restarts_total").ok()? > restarts_before
            || restarts_in_place() > in_place_before)
            .then_some(())
    })
    .await
    .unwrap();
    // Gone before the next test takes its turn, so its cleanup cannot be mistaken for idle writes.
    delete_and_wait(&client, &name).await;
}

/// Deletes the Tenancy `name` (foreground) and waits until it is gone.
async fn delete_and_wait(client: &Client, name: &str) {
    let tenancies = Api::<Tenancy>::all(client.clone());
    tenancies.delete(name, &DeleteParams::foreground()).await.unwrap();
    wait_for("the tenancy is gone", Duration::from_secs(120), || {
        let tenancies = tenancies.clone();
        async move { tenancies.get_opt(name).await.ok()?.is_none().then_some(()) }
    })
    .await
    .unwrap();
}

/// The operator's log so far.
fn operator_log() -> String {
    let log = commons_e2e::measure::cluster_dir().join("logs/commons.log");
    std::fs::read(&log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// How often the operator under test has lost the lead and started itself again in place, by its log.
fn restarts_in_place() -> usize {
    operator_log().matches("lost the lead; starting again in place").count()
}

/// The operator's process id, from the scripts' pid file.
fn operator_pid() -> String {
    std::fs::read_to_string(commons_e2e::measure::cluster_dir().join("pids/commons.pid"))
        .unwrap()
        .trim()
        .to_owned()
}

/// An apiserver outage longer than the leader's renew deadline (10 s) takes the lead away: the
/// operator stops leading and starts itself again in place, in the same process (so with the same
/// identity in the Lease), without any supervisor; once the apiserver is back it leads again and a
/// new Tenancy is Ready within seconds. (Before, the process exited, and with no supervisor nothing
/// was reconciled again.)
#[tokio::test]
async fn an_apiserver_outage_past_the_renew_deadline_restarts_the_leader_in_place() {
    let _turn = TURN.lock().await;
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    let (pid, in_place_before) = (operator_pid(), restarts_in_place());
    let log_before = operator_log().len();
    let outage = std::time::Instant::now();
    operator("restart-apiserver 14").unwrap();
    let outage = outage.elapsed().as_secs_f64();
    // Every watch backs off while the apiserver is unreachable (a watcher's `Init` before each
    // failed list used to reset the back-off: about 100 connection attempts a second).
    let attempts =
        operator_log().get(log_before..).unwrap_or_default().matches("client error (Connect)").count();
    eprintln!("{attempts} refused connections to the apiserver in an outage of {outage:.1} s");
    assert!(
        (attempts as f64) < 40.0 * outage,
        "{attempts} connection attempts in {outage:.1} s: the watches do not back off"
    );
    let client = commons_e2e::client().await.unwrap();
    wait_for("the operator started again in place and leads", Duration::from_secs(30), || async {
        (restarts_in_place() > in_place_before && operator_metric("commons_leading ").ok()? == 1.0)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(operator_pid(), pid, "the operator is still the same process");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the operator's process {pid} is gone");
    let name = format!("e2e-long-outage-{}", std::process::id());
    let started = std::time::Instant::now();
    apply_raw::<Tenancy>(&client, None, tenancy(&name)).await.unwrap();
    wait_for_condition(&client, &name, "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    let took = started.elapsed();
    eprintln!("Ready {took:?} after the operator started again in place");
    assert!(took < Duration::from_secs(15), "a Tenancy took {took:?} to become Ready");
    delete_and_wait(&client, &name).await;
}

/// What `sh` prints, trimmed; panics if it fails.
fn shell(sh: &str) -> String {
    let out = std::process::Command::new("bash").args(["-c", sh]).output().unwrap();
    assert!(out.status.success(), "{sh}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The SHA-256 fingerprint of the certificate the quota webhook serves now.
fn served_fingerprint() -> String {
    let listen = std::env::var("COMMONS_WEBHOOK_LISTEN").unwrap_or_else(|_| "127.0.0.1:18443".into());
    shell(&format!(
        "openssl s_client -connect {listen} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
    ))
}

fn file_fingerprint(path: &std::path::Path) -> String {
    shell(&format!("openssl x509 -noout -fingerprint -sha256 -in '{}'", path.display()))
}

/// The quota webhook takes up a rotated certificate without a restart: the apiserver is told to
/// trust the new CA before the new certificate is served, and pods are still admitted. A
/// certificate whose key is not (yet) there is never served.
#[tokio::test]
async fn a_rotated_webhook_certificate_is_served_without_a_restart() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let _turn = TURN.lock().await;
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    apply_raw::<Tenancy>(&client, None, tenancy("e2e-rotate")).await.unwrap();
    wait_for_condition(&client, "e2e-rotate", "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    // Pods are refused until the controller manager has made the namespace's default account
    // (seen after an apiserver restart in the test before: "serviceaccount default not found").
    wait_for_default_service_account(&client, "e2e-rotate-one").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "e2e-rotate-one");
    let create = |name: &str| {
        let (pods, pod) = (pods.clone(), serde_json::from_value::<Pod>(restricted_pod(name)).unwrap());
        async move { pods.create(&PostParams::default(), &pod).await.map(|_| ()) }
    };
    let dir = std::path::PathBuf::from(operator("webhook-cert-dir").unwrap().trim());
    let before = served_fingerprint();
    assert_eq!(before, file_fingerprint(&dir.join("tls.crt")));
    let old_ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let metric = |outcome: &str| {
        operator_metric(&format!("commons_webhook_certificate_reloads_total{{outcome=\"{outcome}\"}}"))
            .unwrap()
    };
    let refused = metric("refused");

    // Half-written: a certificate for a key that is not there is refused, the old one still served.
    let good = std::fs::read(dir.join("tls.crt")).unwrap();
    shell(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -subj /CN=stranger -days 1 -out '{}' 2>/dev/null",
        dir.join("tls.crt").display()
    ));
    wait_for("the mismatched certificate refused", Duration::from_secs(30), || async {
        (metric("refused") > refused).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(served_fingerprint(), before, "a certificate without its key must not be served");
    create("e2e-rotate-during").await.unwrap();
    std::fs::write(dir.join("tls.crt"), good).unwrap();

    // A whole new CA and certificate, written file by file over the served ones.
    let reloaded = metric("reloaded");
    operator("rotate-webhook-certs").unwrap();
    let after = file_fingerprint(&dir.join("tls.crt"));
    assert_ne!(after, before, "the rotation made a new certificate");
    let new_ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    assert_ne!(new_ca, old_ca);
    let hooks = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    let bundle = || {
        let hooks = hooks.clone();
        async move {
            let hook = hooks.get("quota.commons.dev").await.unwrap();
            String::from_utf8(hook.webhooks.unwrap()[0].client_config.ca_bundle.clone().unwrap().0).unwrap()
        }
    };
    // Trust comes first: whenever the new certificate is served, the apiserver already trusts its
    // CA; for a while both CAs are trusted; in the end only the new one.
    let mut saw_both = false;
    let mut served_new = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let serving_new = served_fingerprint() == after;
        let trusted = bundle().await;
        if serving_new {
            assert!(
                trusted.contains(new_ca.trim()),
                "the new certificate was served before its CA was trusted"
            );
            served_new = true;
        }
        saw_both |= trusted.contains(new_ca.trim()) && trusted.contains(old_ca.trim());
        if served_new && trusted.trim() == new_ca.trim() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "rotation not complete: served new {served_new}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_both, "both CAs are trusted while the certificate changes");
    assert!(metric("reloaded") > reloaded);
    // Its expiry is published for the alert: the served certificate's notAfter, as openssl reads it.
    let not_after = shell(&format!(
        "date -u -d \"$(openssl x509 -noout -enddate -in '{}' | cut -d= -f2)\" +%s",
        dir.join("tls.crt").display()
    ));
    let published = operator_metric("commons_webhook_certificate_expiry_timestamp_seconds").unwrap();
    assert_eq!(published.to_string(), not_after, "the published expiry");
    // The apiserver reaches the webhook over the new certificate: the pod is checked and admitted.
    create("e2e-rotate-after").await.unwrap();
    Api::<Tenancy>::all(client.clone()).delete("e2e-rotate", &DeleteParams::background()).await.unwrap();
}

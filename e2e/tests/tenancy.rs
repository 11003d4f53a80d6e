//! The Tenancy controller against the real control plane, with the real operator running
//! (`e2e/test.sh` starts it): namespaces, owners' access, strict quota, defaults, isolation,
//! suspension, expiry, drift and deletion.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use commons_crds::Tenancy;
use commons_e2e::{
    apply_raw, can_i, client, install_crds, operator_metric, restricted_pod, tenancy_event_reasons,
    tenancy_manifest, wait_for, wait_for_condition, wait_for_default_service_account,
};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Pod, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(60);

/// Makes pod names unique across the phases of a test.
static NEXT_POD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn ready_client() -> Client {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    client
}

fn tenancy(name: &str, namespaces: &[&str], extra: Value) -> Value {
    tenancy_manifest(name, namespaces, extra)
}

async fn fresh_tenancy(client: &Client, name: &str, namespaces: &[&str], extra: Value) -> Tenancy {
    delete_tenancy(client, name).await;
    apply_raw::<Tenancy>(client, None, tenancy(name, namespaces, extra)).await.unwrap();
    wait_for_condition(client, name, "Ready", "True", None, READY).await.unwrap()
}

async fn delete_tenancy(client: &Client, name: &str) {
    commons_e2e::delete_tenancy(client, name).await.unwrap();
}

async fn create_pod(client: &Client, namespace: &str, name: &str) -> Result<Pod, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod: Pod = serde_json::from_value(restricted_pod(name)).unwrap();
    pods.create(&PostParams::default(), &pod).await.map_err(|e| match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    })
}

async fn live_pods(client: &Client, namespace: &str) -> usize {
    commons_e2e::live_pods(client, namespace).await.unwrap()
}

#[tokio::test]
async fn a_tenancy_gets_owned_labelled_namespaces_with_everything_commons_manages() {
    let client = ready_client().await;
    let t = fresh_tenancy(
        &client,
        "e2e-basic",
        &["prod", "dev"],
        json!({"classification": "official-sensitive", "podSecurity": "baseline"}),
    )
    .await;
    let status = t.status.clone().unwrap();
    assert_eq!(status.observed_generation, t.metadata.generation);
    let names: Vec<_> = status.namespaces.iter().map(|n| (n.name.as_str(), n.ready)).collect();
    assert_eq!(names, [("e2e-basic-prod", true), ("e2e-basic-dev", true)]);
    for c in ["Ready", "QuotaApplied", "NetworkReady"] {
        let cond = status.conditions.iter().find(|x| x.type_ == c).unwrap();
        assert_eq!(cond.status, "True", "{c}: {cond:?}");
    }

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get("e2e-basic-prod").await.unwrap();
    let labels = ns.labels();
    assert_eq!(labels["commons.dev/tenancy"], "e2e-basic");
    assert_eq!(labels["commons.dev/sector"], "local-government");
    assert_eq!(labels["commons.dev/classification"], "official-sensitive");
    assert_eq!(labels["commons.dev/cost-centre"], "E2E-01");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    let owner = &ns.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Tenancy", "e2e-basic", Some(true))
    );

    for (ns, rq) in [("e2e-basic-prod", "commons-quota"), ("e2e-basic-dev", "commons-quota")] {
        Api::<ResourceQuota>::namespaced(client.clone(), ns).get(rq).await.unwrap();
        Api::<LimitRange>::namespaced(client.clone(), ns).get("commons-defaults").await.unwrap();
        Api::<NetworkPolicy>::namespaced(client.clone(), ns).get("commons-baseline").await.unwrap();
        let rb = Api::<RoleBinding>::namespaced(client.clone(), ns).get("commons-owners").await.unwrap();
        assert_eq!(rb.subjects.unwrap()[0].name, "e2e-basic-admins");
    }
    let printed = commons_e2e::kubectl(&["get", "tenancy", "e2e-basic"]).unwrap();
    assert!(
        printed.contains("ORGANISATION")
            && printed.contains("e2e-basic organisation")
            && printed.contains("True"),
        "{printed}"
    );
    let reasons = tenancy_event_reasons(&client, "e2e-basic").await.unwrap();
    assert!(reasons.contains(&"NamespaceCreated".to_owned()), "{reasons:?}");
    // One Event for the namespaces a new tenancy gets, naming each.
    let uid = Api::<Tenancy>::all(client.clone()).get("e2e-basic").await.unwrap().metadata.uid.unwrap();
    let created = commons_e2e::event_notes(&client, &uid, "NamespaceCreated").await.unwrap();
    assert_eq!(created, ["created namespaces e2e-basic-prod, e2e-basic-dev"], "{created:?}");

    // A pod without requests gets the defaults, so it is counted and metered.
    create_pod(&client, "e2e-basic-prod", "defaults").await.unwrap();
    let pod = Api::<Pod>::namespaced(client.clone(), "e2e-basic-prod").get("defaults").await.unwrap();
    let requests = pod.spec.unwrap().containers[0].resources.clone().unwrap().requests.unwrap();
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(requests["memory"].0, "128Mi");
    delete_tenancy(&client, "e2e-basic").await;
}

#[tokio::test]
async fn a_namespace_that_belongs_to_something_else_is_never_taken_over() {
    let client = ready_client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    delete_tenancy(&client, "e2e-conflict").await;
    if namespaces.get_opt("e2e-conflict-taken").await.unwrap().is_none() {
        let ns = serde_json::from_value(
            json!({"metadata": {"name": "e2e-conflict-taken", "labels": {"team": "someone-else"}}}),
        )
        .unwrap();
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
    }
    apply_raw::<Tenancy>(&client, None, tenancy("e2e-conflict", &["taken", "free"], json!({})))
        .await
        .unwrap();
    let t = wait_for_condition(&client, "e2e-conflict", "Ready", "False", Some("NamespaceConflict"), READY)
        .await
        .unwrap();
    let status = t.status.unwrap();
    let taken = status.namespaces.iter().find(|n| n.name == "e2e-conflict-taken").unwrap();
    assert!(!taken.ready);
    assert!(taken.message.as_deref().unwrap().contains("belongs to something else"), "{taken:?}");
    assert!(status.namespaces.iter().any(|n| n.name == "e2e-conflict-free" && n.ready));

    let untouched = namespaces.get("e2e-conflict-taken").await.unwrap();
    assert!(untouched.owner_references().is_empty());
    assert!(!untouched.labels().contains_key("commons.dev/tenancy"));
    assert_eq!(untouched.labels()["team"], "someone-else");
    assert!(
        Api::<ResourceQuota>::namespaced(client.clone(), "e2e-conflict-taken")
            .get_opt("commons-quota")
            .await
            .unwrap()
            .is_none()
    );
    let reasons = tenancy_event_reasons(&client, "e2e-conflict").await.unwrap();
    assert!(reasons.contains(&"NamespaceConflict".to_owned()), "{reasons:?}");

    delete_tenancy(&client, "e2e-conflict").await;
    // Deleting the tenancy leaves the namespace it never owned.
    assert!(namespaces.get_opt("e2e-conflict-taken").await.unwrap().is_some());
    namespaces.delete("e2e-conflict-taken", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn owners_run_workloads_but_cannot_change_what_commons_manages_or_touch_other_tenancies() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-rbac-a", &["app"], json!({})).await;
    fresh_tenancy(&client, "e2e-rbac-b", &["app"], json!({})).await;
    let (user, group) = ("alice@a.example.gov.uk", "e2e-rbac-a-admins");
    let own = Some("e2e-rbac-a-app");
    let other = Some("e2e-rbac-b-app");
    let allowed = [
        ("create", "deployments.apps", own),
        ("create", "pods", own),
        ("delete", "pods", own),
        ("create", "secrets", own),
        ("create", "hostedservices.commons.dev", own),
        ("create", "subscriptions.commons.dev", own),
        ("delete", "subscriptions.commons.dev", own),
        ("get", "resourcequotas", own),
        ("list", "networkpolicies.networking.k8s.io", own),
        ("get", "tenancies.commons.dev/e2e-rbac-a", None),
    ];
    for (verb, resource, ns) in allowed {
        assert!(
            can_i(verb, resource, ns, user, group).unwrap(),
            "owner should be able to {verb} {resource} in {ns:?}"
        );
    }
    let denied = [
        ("update", "resourcequotas", own),
        ("delete", "resourcequotas", own),
        ("patch", "limitranges", own),
        ("delete", "networkpolicies.networking.k8s.io", own),
        ("update", "rolebindings.rbac.authorization.k8s.io", own),
        ("patch", "namespaces/e2e-rbac-a-app", None),
        ("update", "tenancies.commons.dev/e2e-rbac-a", None),
        ("patch", "tenancies.commons.dev/e2e-rbac-a", None),
        ("get", "tenancies.commons.dev/e2e-rbac-b", None),
        ("create", "pods", other),
        ("get", "secrets", other),
        ("list", "pods", Some("default")),
        ("create", "endpoints", own),
        ("update", "endpoints", own),
        ("create", "subscriptions.commons.dev", other),
        // Prices and tax are the platform's: no owner publishes or withdraws them.
        ("create", "ratecards.commons.dev", None),
        ("delete", "ratecards.commons.dev", None),
        ("create", "vatrates.commons.dev", None),
        ("delete", "vatrates.commons.dev", None),
        ("create", "endpointslices.discovery.k8s.io", own),
    ];
    for (verb, resource, ns) in denied {
        assert!(
            !can_i(verb, resource, ns, user, group).unwrap(),
            "owner must not {verb} {resource} in {ns:?}"
        );
    }
    delete_tenancy(&client, "e2e-rbac-a").await;
    delete_tenancy(&client, "e2e-rbac-b").await;
}

/// Races pod creation in three namespaces against a 12-pod tenancy limit while watching every
/// ResourceQuota and pod count: the shares never add up to more than the limit, all of it gets
/// used, and once two namespaces go idle the third can take all the free headroom.
#[tokio::test]
async fn tenancy_quota_is_never_exceeded_under_concurrent_pod_creation() {
    let client = ready_client().await;
    let namespaces = ["a", "b", "c"];
    fresh_tenancy(&client, "e2e-quota", &namespaces, json!({"quota": {"pods": 12}})).await;
    let full: Vec<String> = namespaces.iter().map(|n| format!("e2e-quota-{n}")).collect();
    const LIMIT: i64 = 12;

    // Watchdog: sums hard values and live pods all through the race.
    let stop = Arc::new(AtomicBool::new(false));
    let worst_hard = Arc::new(AtomicI64::new(0));
    let worst_pods = Arc::new(AtomicI64::new(0));
    let watchdog = {
        let (client, stop, worst_hard, worst_pods, full) =
            (client.clone(), stop.clone(), worst_hard.clone(), worst_pods.clone(), full.clone());
        tokio::spawn(async move {
            let rqs: Api<ResourceQuota> = Api::all(client.clone());
            while !stop.load(Ordering::SeqCst) {
                let list =
                    rqs.list(&ListParams::default().labels("commons.dev/tenancy=e2e-quota")).await.unwrap();
                let hard: i64 = list
                    .items
                    .iter()
                    .filter_map(|rq| rq.spec.as_ref()?.hard.as_ref()?.get("pods")?.0.parse::<i64>().ok())
                    .sum();
                worst_hard.fetch_max(hard, Ordering::SeqCst);
                let mut pods = 0;
                for ns in &full {
                    pods += live_pods(&client, ns).await as i64;
                }
                worst_pods.fetch_max(pods, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Each namespace wants 8 pods (24 in all, twice the limit) and keeps retrying refusals.
    // Each racer stops when it has what it wants, or 10 s after the tenancy as a whole has made 12
    // (pressing on the full limit meanwhile), or at its deadline. The deadline allows for an
    // admission that failed after the webhook, whose quota stays held for about 70 s.
    let made_total = Arc::new(AtomicI64::new(0));
    let race = |ns: String, want: usize, seconds: u64| {
        let (client, made_total) = (client.clone(), made_total.clone());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
            let mut full_since: Option<tokio::time::Instant> = None;
            let mut made = live_pods(&client, &ns).await;
            let mut refusals = 0;
            let mut i = 0;
            while made < want && tokio::time::Instant::now() < deadline {
                if made_total.load(Ordering::SeqCst) >= LIMIT {
                    let since = *full_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                }
                i += 1;
                let unique = NEXT_POD.fetch_add(1, Ordering::SeqCst);
                match create_pod(&client, &ns, &format!("p{}-{unique}-{i}", std::process::id())).await {
                    Ok(_) => {
                        made += 1;
                        made_total.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(m) => {
                        // Commons' quota webhook refuses past the tenancy's limit or the namespace's
                        // current share; behind it the apiserver's own quota admission refuses
                        // past a share, or answers a conflict when admissions race on a quota.
                        let retryable = m.contains("exceeds the tenancy quota")
                            || m.contains("exceeds the namespace's current share")
                            || m.contains("exceeded quota")
                            || m.contains("the object has been modified");
                        assert!(retryable, "unexpected refusal: {m}");
                        if !m.contains("exceeds the") {
                            // Refused behind the webhook: its quota stays held for a while.
                            eprintln!("refused behind the webhook in {ns}: {m}");
                        }
                        if refusals == 0 {
                            eprintln!("race: first refusal in {ns} after {made} made: {m}");
                        }
                        refusals += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (made, refusals)
        }
    };
    let results = futures::future::join_all(full.iter().map(|ns| race(ns.clone(), 8, 100))).await;
    let total: usize = results.iter().map(|(m, _)| m).sum();
    // The limit itself: never more than 12 pods made, never more than 12 seen at once.
    assert!(total as i64 <= LIMIT, "{total} pods were admitted against a limit of 12: {results:?}");
    // Commons' own invariant: the namespaces' shares never add up to more than the limit.
    assert!(
        worst_hard.load(Ordering::SeqCst) <= LIMIT,
        "shares summed to {} during the race",
        worst_hard.load(Ordering::SeqCst)
    );
    assert!(total as i64 >= LIMIT, "all 12 pods of headroom get used: (made, refusals) {results:?}");
    assert!(results.iter().map(|(_, r)| r).sum::<usize>() > 0, "the race must have hit the limit");
    assert!(
        worst_pods.load(Ordering::SeqCst) <= LIMIT,
        "{} pods existed at once against a limit of 12",
        worst_pods.load(Ordering::SeqCst)
    );
    let t0 = std::time::Instant::now();
    eprintln!("race: (made, refusals) {results:?}");

    // Two namespaces go idle; the third takes everything that frees up.
    for ns in &full[..2] {
        Api::<Pod>::namespaced(client.clone(), ns)
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .unwrap();
    }
    for ns in &full[..2] {
        wait_for("idle namespace emptied", Duration::from_secs(60), || {
            let client = client.clone();
            async move { (live_pods(&client, ns).await == 0).then_some(()) }
        })
        .await
        .unwrap();
    }
    eprintln!("race: idle namespaces emptied after {:?}", t0.elapsed());
    // The tenancy now holds only the third namespace's pods.
    made_total.store(live_pods(&client, &full[2]).await as i64, Ordering::SeqCst);
    let (made, refused) = race(full[2].clone(), LIMIT as usize, 120).await;
    eprintln!("race: the third namespace made {made} after {:?} ({refused} refusals)", t0.elapsed());
    assert!(made as i64 >= LIMIT, "one namespace can use all the tenancy's free headroom: {made}");

    stop.store(true, Ordering::SeqCst);
    watchdog.await.unwrap();
    assert!(
        worst_hard.load(Ordering::SeqCst) <= LIMIT,
        "hard values summed to {}",
        worst_hard.load(Ordering::SeqCst)
    );
    assert!(
        worst_pods.load(Ordering::SeqCst) <= LIMIT,
        "{} pods existed at once",
        worst_pods.load(Ordering::SeqCst)
    );
    let t = wait_for_condition(&client, "e2e-quota", "QuotaApplied", "True", Some("QuotaExhausted"), READY)
        .await
        .unwrap();
    let quota = t.status.unwrap().quota.unwrap();
    assert_eq!(quota.hard["pods"], "12");
    assert!(quota.used["pods"].parse::<i64>().unwrap() >= LIMIT, "{quota:?}");
    let reasons = tenancy_event_reasons(&client, "e2e-quota").await.unwrap();
    assert!(reasons.contains(&"QuotaExhausted".to_owned()), "{reasons:?}");
    delete_tenancy(&client, "e2e-quota").await;
}

async fn create_json<K>(client: &Client, namespace: &str, obj: Value, dry_run: bool) -> Result<K, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PostParams { dry_run, ..PostParams::default() };
    api.create(&params, &serde_json::from_value(obj).unwrap()).await.map_err(|e| match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    })
}

fn claim(name: &str, size: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}})
}

fn load_balancer(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}})
}

/// The quota webhook counts storage and load balancers across the tenancy too, says which
/// resource and how much in its refusals, moves headroom to a namespace it refused by its share,
/// and does not hold quota for dry runs.
#[tokio::test]
async fn claims_and_load_balancers_are_held_to_the_tenancy_quota_with_clear_refusals() {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
    let client = ready_client().await;
    fresh_tenancy(
        &client,
        "e2e-kinds",
        &["a", "b"],
        json!({"quota": {"storage": "2Gi", "loadBalancers": 1, "pods": 1}}),
    )
    .await;

    // Storage: 1Gi in each namespace fits; a third 1Gi anywhere does not, and the refusal says why.
    create_json::<PersistentVolumeClaim>(&client, "e2e-kinds-a", claim("one", "1Gi"), false).await.unwrap();
    wait_for("a claim in the second namespace", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            create_json::<PersistentVolumeClaim>(&client, "e2e-kinds-b", claim("two", "1Gi"), false)
                .await
                .ok()
        }
    })
    .await
    .unwrap();
    let refused = create_json::<PersistentVolumeClaim>(&client, "e2e-kinds-a", claim("three", "1Gi"), false)
        .await
        .unwrap_err();
    assert!(
        refused.contains(r#"PersistentVolumeClaim in namespace "e2e-kinds-a" of tenancy "e2e-kinds" exceeds the tenancy quota: requests.storage requested 1Gi, the tenancy's namespaces use 2Gi of its limit of 2Gi"#),
        "{refused}"
    );

    // One load balancer. The namespace whose share holds it gets it; the other is refused by the
    // tenancy limit, and once it is freed the other namespace can take it (headroom moves to a
    // namespace refused by its share within seconds).
    let mut first = None;
    for ns in ["e2e-kinds-a", "e2e-kinds-b"] {
        if create_json::<Service>(&client, ns, load_balancer("lb"), false).await.is_ok() {
            first = Some(ns);
            break;
        }
    }
    let first = match first {
        Some(ns) => ns,
        None => wait_for("the one load balancer", Duration::from_secs(30), || {
            let client = client.clone();
            async move {
                create_json::<Service>(&client, "e2e-kinds-b", load_balancer("lb"), false)
                    .await
                    .ok()
                    .map(|_| "e2e-kinds-b")
            }
        })
        .await
        .unwrap(),
    };
    let other = if first == "e2e-kinds-a" { "e2e-kinds-b" } else { "e2e-kinds-a" };
    let refused = create_json::<Service>(&client, other, load_balancer("lb"), false).await.unwrap_err();
    assert!(
        refused.contains("exceeds the tenancy quota: services.loadbalancers requested 1, the tenancy's namespaces use 1 of its limit of 1"),
        "{refused}"
    );
    // A ClusterIP Service counts nothing and is never refused.
    create_json::<Service>(
        &client,
        other,
        json!({"metadata": {"name": "plain"}, "spec": {"ports": [{"port": 80}]}}),
        false,
    )
    .await
    .unwrap();
    Api::<Service>::namespaced(client.clone(), first).delete("lb", &DeleteParams::default()).await.unwrap();
    wait_for("the freed load balancer moves to the other namespace", Duration::from_secs(60), || {
        let client = client.clone();
        async move { create_json::<Service>(&client, other, load_balancer("lb"), false).await.ok() }
    })
    .await
    .unwrap();

    // Dry runs are checked but hold nothing: two dry runs of the last pod, then the real one.
    for i in 0..2 {
        wait_for("a dry-run pod is admitted", Duration::from_secs(30), || {
            let client = client.clone();
            async move {
                create_json::<Pod>(&client, "e2e-kinds-a", restricted_pod(&format!("dry{i}")), true)
                    .await
                    .ok()
            }
        })
        .await
        .unwrap();
    }
    create_pod(&client, "e2e-kinds-a", "real").await.unwrap();
    let refused = create_pod(&client, "e2e-kinds-b", "extra").await.unwrap_err();
    assert!(
        refused.contains("pods requested 1, the tenancy's namespaces use 1 of its limit of 1"),
        "{refused}"
    );
    delete_tenancy(&client, "e2e-kinds").await;
}

/// An admission whose object is never stored (here a duplicate name, which storage refuses after
/// the webhook has admitted it) keeps its quota held, so the limit can never be passed, until
/// Commons has read afresh, after the apiserver's request timeout, that it was never stored; then
/// Commons releases it.
#[tokio::test]
async fn quota_held_for_a_create_that_failed_after_admission_is_released() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-settle", &["app"], json!({"quota": {"pods": 2}})).await;
    let before = operator_metric(r#"commons_admission_reservations_settled_total{how="absent"}"#).unwrap();
    create_pod(&client, "e2e-settle-app", "x").await.unwrap();
    let duplicate = create_pod(&client, "e2e-settle-app", "x").await.unwrap_err();
    assert!(duplicate.contains("already exists"), "{duplicate}");
    let started = std::time::Instant::now();
    let held = create_pod(&client, "e2e-settle-app", "y").await.unwrap_err();
    assert!(held.contains("pods requested 1, the tenancy's namespaces use 2 of its limit of 2"), "{held}");
    // Kubernetes' own quota admission also charged the failed create to the namespace's
    // ResourceQuota before storage refused it, and keeps that charge until the controller
    // manager's next recount (every 5 minutes by default). So once Commons releases its hold the
    // tenancy-wide check passes, and a refusal can only be the namespace share's.
    let outcome = wait_for("Commons releases the held quota", Duration::from_secs(150), || {
        let client = client.clone();
        async move {
            match create_pod(&client, "e2e-settle-app", "y").await {
                Ok(_) => Some("admitted".to_owned()),
                Err(m) if m.contains("exceeds the tenancy quota") => None,
                Err(m) => Some(m),
            }
        }
    })
    .await
    .unwrap();
    assert!(
        outcome == "admitted"
            || outcome.contains("exceeds the namespace's current share")
            || outcome.contains("exceeded quota"),
        "{outcome}"
    );
    assert!(started.elapsed() >= Duration::from_secs(55), "released after {:?}", started.elapsed());
    let after = operator_metric(r#"commons_admission_reservations_settled_total{how="absent"}"#).unwrap();
    assert!(after > before, "the release is counted: {before} -> {after}");
    delete_tenancy(&client, "e2e-settle").await;
}

#[tokio::test]
async fn suspension_stops_new_pods_without_deleting_anything_and_resumes() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-suspend", &["app"], json!({})).await;
    create_pod(&client, "e2e-suspend-app", "before").await.unwrap();

    apply_raw::<Tenancy>(&client, None, tenancy("e2e-suspend", &["app"], json!({"suspended": true})))
        .await
        .unwrap();
    wait_for_condition(&client, "e2e-suspend", "Suspended", "True", Some("Suspended"), READY).await.unwrap();
    let t =
        wait_for_condition(&client, "e2e-suspend", "Ready", "False", Some("Suspended"), READY).await.unwrap();
    assert!(t.status.unwrap().namespaces[0].ready);
    let refused = create_pod(&client, "e2e-suspend-app", "during").await.unwrap_err();
    assert!(refused.contains(r#"tenancy "e2e-suspend" is suspended (spec.suspended)"#), "{refused}");
    // What is written: the namespace's pod share is lowered to the one pod it runs, so the
    // apiserver's own quota admission refuses new pods too (docs/tenancy.md, "suspended").
    wait_for("the pod share lowered to the running pod", READY, || {
        let client = client.clone();
        async move {
            let rq = Api::<ResourceQuota>::namespaced(client, "e2e-suspend-app")
                .get("commons-quota")
                .await
                .ok()?;
            (rq.spec?.hard?.get("pods")?.0 == "1").then_some(())
        }
    })
    .await
    .unwrap();
    assert!(
        Api::<Pod>::namespaced(client.clone(), "e2e-suspend-app").get_opt("before").await.unwrap().is_some()
    );

    apply_raw::<Tenancy>(&client, None, tenancy("e2e-suspend", &["app"], json!({"suspended": false})))
        .await
        .unwrap();
    wait_for_condition(&client, "e2e-suspend", "Ready", "True", None, READY).await.unwrap();
    wait_for("pods start again", Duration::from_secs(30), || {
        let client = client.clone();
        async move { create_pod(&client, "e2e-suspend-app", "after").await.ok().map(|_| ()) }
    })
    .await
    .unwrap();
    let reasons = tenancy_event_reasons(&client, "e2e-suspend").await.unwrap();
    assert!(
        reasons.contains(&"Suspended".to_owned()) && reasons.contains(&"Resumed".to_owned()),
        "{reasons:?}"
    );
    delete_tenancy(&client, "e2e-suspend").await;
}

#[tokio::test]
async fn a_sandbox_is_warned_7_days_and_1_day_before_and_suspended_on_expiry() {
    let client = ready_client().await;
    let at = |hours: i64| (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours)).to_string();
    fresh_tenancy(&client, "e2e-sandbox", &["lab"], json!({"expiresAt": at(24 * 30)})).await;
    wait_for_condition(&client, "e2e-sandbox", "Expiring", "False", Some("NotExpiring"), READY)
        .await
        .unwrap();

    apply_raw::<Tenancy>(&client, None, tenancy("e2e-sandbox", &["lab"], json!({"expiresAt": at(24 * 3)})))
        .await
        .unwrap();
    wait_for_condition(&client, "e2e-sandbox", "Expiring", "True", Some("ExpiresWithin7Days"), READY)
        .await
        .unwrap();
    apply_raw::<Tenancy>(&client, None, tenancy("e2e-sandbox", &["lab"], json!({"expiresAt": at(2)})))
        .await
        .unwrap();
    wait_for_condition(&client, "e2e-sandbox", "Expiring", "True", Some("ExpiresWithin1Day"), READY)
        .await
        .unwrap();
    apply_raw::<Tenancy>(&client, None, tenancy("e2e-sandbox", &["lab"], json!({"expiresAt": at(-1)})))
        .await
        .unwrap();
    let t = wait_for_condition(&client, "e2e-sandbox", "Suspended", "True", Some("Expired"), READY)
        .await
        .unwrap();
    assert!(!t.spec.suspended, "expiry suspends without changing the spec");
    let refused = create_pod(&client, "e2e-sandbox-lab", "late").await.unwrap_err();
    assert!(refused.contains("passed its expiry date (spec.expiresAt)"), "{refused}");
    // Nothing is deleted.
    assert!(Api::<Namespace>::all(client.clone()).get_opt("e2e-sandbox-lab").await.unwrap().is_some());
    let reasons = tenancy_event_reasons(&client, "e2e-sandbox").await.unwrap();
    for r in ["ExpiresWithin7Days", "ExpiresWithin1Day", "Expired"] {
        assert!(reasons.contains(&r.to_owned()), "{r} missing from {reasons:?}");
    }
    delete_tenancy(&client, "e2e-sandbox").await;
}

#[tokio::test]
async fn managed_objects_edited_or_deleted_by_hand_are_restored() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-drift", &["app"], json!({"quota": {"pods": 10}})).await;
    let ns = "e2e-drift-app";
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    let original = policies.get("commons-baseline").await.unwrap();
    policies.delete("commons-baseline", &DeleteParams::default()).await.unwrap();
    wait_for("baseline policy recreated", Duration::from_secs(30), || {
        let policies = policies.clone();
        let uid = original.uid();
        async move { policies.get_opt("commons-baseline").await.ok()?.filter(|p| p.uid() != uid).map(|_| ()) }
    })
    .await
    .unwrap();

    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
    let patch = json!({"spec": {"hard": {"pods": "1000"}}});
    quotas.patch("commons-quota", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    wait_for("quota restored", Duration::from_secs(30), || {
        let quotas = quotas.clone();
        async move {
            let rq = quotas.get("commons-quota").await.ok()?;
            (rq.spec?.hard?.get("pods")?.0 == "10").then_some(())
        }
    })
    .await
    .unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let patch = json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}});
    namespaces.patch(ns, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    wait_for("namespace labels restored", Duration::from_secs(30), || {
        let namespaces = namespaces.clone();
        async move {
            let n = namespaces.get(ns).await.ok()?;
            (n.labels().get("pod-security.kubernetes.io/enforce")? == "restricted").then_some(())
        }
    })
    .await
    .unwrap();
    delete_tenancy(&client, "e2e-drift").await;
}

#[tokio::test]
async fn deleting_a_tenancy_removes_everything_commons_made() {
    let client = ready_client().await;
    fresh_tenancy(&client, "e2e-delete", &["one", "two"], json!({})).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(roles.get_opt("commons:tenancy:e2e-delete").await.unwrap().is_some());

    // Dropping a namespace from the spec deletes it.
    apply_raw::<Tenancy>(&client, None, tenancy("e2e-delete", &["one"], json!({}))).await.unwrap();
    wait_for("namespace two gone", Duration::from_secs(90), || {
        let namespaces = namespaces.clone();
        async move { namespaces.get_opt("e2e-delete-two").await.ok()?.is_none().then_some(()) }
    })
    .await
    .unwrap();

    let api: Api<Tenancy> = Api::all(client.clone());
    api.delete("e2e-delete", &DeleteParams::background()).await.unwrap();
    wait_for("everything gone", Duration::from_secs(120), || {
        let (namespaces, roles) = (namespaces.clone(), roles.clone());
        async move {
            let ns = namespaces
                .list(&ListParams::default().labels("commons.dev/tenancy=e2e-delete"))
                .await
                .ok()?;
            let role = roles.get_opt("commons:tenancy:e2e-delete").await.ok()?;
            (ns.items.is_empty() && role.is_none()).then_some(())
        }
    })
    .await
    .unwrap();
}

async fn pod_share(client: &Client, namespace: &str) -> Option<String> {
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), namespace);
    Some(quotas.get_opt("commons-quota").await.ok()??.spec?.hard?.get("pods")?.0.clone())
}

/// A dry run refused by its namespace's share asks for nothing: the shares stay where they are.
/// A real refusal then moves the headroom, so the first half can fail.
#[tokio::test]
async fn a_dry_run_refused_by_its_share_moves_no_quota() {
    let client = ready_client().await;
    // One pod for two namespaces: the first by name holds the unit, unused.
    fresh_tenancy(&client, "e2e-dry", &["a", "b"], json!({"quota": {"pods": 1}})).await;
    let shares = || {
        let client = client.clone();
        async move { (pod_share(&client, "e2e-dry-a").await, pod_share(&client, "e2e-dry-b").await) }
    };
    let start = (Some("1".to_owned()), Some("0".to_owned()));
    assert_eq!(shares().await, start, "the unit starts in the first namespace");
    wait_for_default_service_account(&client, "e2e-dry-b").await.unwrap();
    for i in 0..5 {
        let refused = create_json::<Pod>(&client, "e2e-dry-b", restricted_pod(&format!("dry{i}")), true)
            .await
            .unwrap_err();
        assert!(refused.contains("e2e-dry-b"), "{refused}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Past the planner's reaction time (a refusal moves the unit within seconds): nothing moved.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(shares().await, start, "dry runs moved quota");

    let refused = create_pod(&client, "e2e-dry-b", "real").await.unwrap_err();
    assert!(refused.contains("e2e-dry-b"), "{refused}");
    wait_for("a real refusal moves the unit", Duration::from_secs(30), || {
        let shares = shares();
        async move { (shares.await == (Some("0".into()), Some("1".into()))).then_some(()) }
    })
    .await
    .unwrap();
    delete_tenancy(&client, "e2e-dry").await;
}

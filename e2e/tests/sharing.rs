//! Sharing with consent on both sides, against the real control plane with the real operator:
//! a shared subscription opens exactly one path (proved on the live policies with the
//! reachability evaluator behind `commons reachability --services`), either side ends it, an
//! instance subscription runs a copy of its own, bad subscriptions are refused naming the field,
//! and the catalogue lists published services with their users.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::Tenancy;
use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::{Subscription, SubscriptionPhase};
use commons_e2e::{
    apply_raw, client, client_as, create_raw, event_notes, install_crds, tenancy_manifest, wait_for,
};
use commons_operator::reachability_cmd::{load, matrix};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const NORTH: &str = "e2e-sh-north";
const PROVIDER_NS: &str = "e2e-sh-north-hr";

fn service(name: &str, extra: Value) -> Value {
    let mut spec = json!({
        "image": "registry.example.gov.uk/app:1.0",
        "replicas": 1,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]
    });
    if let (Value::Object(s), Value::Object(e)) = (&mut spec, extra) {
        s.extend(e);
    }
    json!({"apiVersion": "commons.dev/v1alpha1", "kind": "HostedService", "metadata": {"name": name}, "spec": spec})
}

fn subscription(name: &str, service: &str, extra: Value) -> Value {
    let mut spec = json!({"service": {"namespace": PROVIDER_NS, "name": service}});
    if let (Value::Object(s), Value::Object(e)) = (&mut spec, extra) {
        s.extend(e);
    }
    json!({"apiVersion": "commons.dev/v1alpha1", "kind": "Subscription", "metadata": {"name": name}, "spec": spec})
}

fn payroll(consumers: &[&str]) -> Value {
    let mut extra = json!({
        "catalogue": {"publish": true, "title": "Payroll", "description": "Monthly payroll for councils", "category": "payroll"}
    });
    if !consumers.is_empty() {
        extra["sharing"] = json!({"consumers": consumers});
    }
    service("payroll", extra)
}

async fn wait_phase(
    client: &Client,
    ns: &str,
    name: &str,
    phase: SubscriptionPhase,
    reason: Option<&str>,
) -> Subscription {
    let api: Api<Subscription> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("Subscription {ns}/{name} {phase:?} {reason:?}"), WAIT, || {
        let api = api.clone();
        async move {
            let s = api.get_opt(name).await.ok()??;
            let st = s.status.as_ref()?;
            (st.phase == Some(phase) && st.reason.as_deref() == reason).then_some(s.clone())
        }
    })
    .await
    .unwrap()
}

async fn wait_service_ready(client: &Client, ns: &str, name: &str) -> HostedService {
    let api: Api<HostedService> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("HostedService {ns}/{name} Ready"), WAIT, || {
        let api = api.clone();
        async move {
            let hs = api.get_opt(name).await.ok()??;
            let ready =
                hs.status.as_ref()?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(hs)
        }
    })
    .await
    .unwrap()
}

/// The reachable pairs among the test's services ("from->to", self excluded), from the live
/// policies, namespaces and pods.
async fn service_pairs(client: &Client) -> Vec<String> {
    let m = matrix(&load(client).await.unwrap(), true);
    let mut pairs = vec![];
    for (i, from) in m.names.iter().enumerate() {
        for (j, to) in m.names.iter().enumerate() {
            if i != j && from.starts_with("e2e-sh-") && to.starts_with("e2e-sh-") && m.reach[i][j] {
                pairs.push(format!("{from}->{to}"));
            }
        }
    }
    pairs.sort();
    pairs
}

async fn expect_pairs(client: &Client, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = service_pairs(client).await;
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "reachability {got:#?}, wanted {want:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes and makes again each tenancy `(name, namespaces, extra spec)`, and waits until all are
/// Ready.
async fn fresh_tenancies(client: &Client, tenancies: &[(&str, &[&str], Value)]) {
    for (name, _, _) in tenancies {
        commons_e2e::delete_tenancy(client, name).await.unwrap();
    }
    for (name, namespaces, extra) in tenancies {
        apply_raw::<Tenancy>(client, None, tenancy_manifest(name, namespaces, extra.clone())).await.unwrap();
    }
    for (name, _, _) in tenancies {
        commons_e2e::wait_for_condition(client, name, "Ready", "True", None, WAIT).await.unwrap();
    }
}

async fn delete_tenancies(client: &Client, names: &[&str]) {
    for name in names {
        commons_e2e::delete_tenancy(client, name).await.unwrap();
    }
}

#[tokio::test]
async fn sharing_needs_consent_on_both_sides_and_opens_exactly_one_path() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    let apps: &[&str] = &["apps"];
    fresh_tenancies(
        &client,
        &[
            (NORTH, &["hr"], json!({"classification": "official-sensitive"})),
            ("e2e-sh-south", apps, json!({})),
            ("e2e-sh-west", apps, json!({})),
            ("e2e-sh-east", apps, json!({})),
        ],
    )
    .await;
    // The provider: payroll shared with south and west; a ledger it shares with no one; casework
    // classified above what the consumers are cleared for.
    apply_raw::<HostedService>(&client, Some(PROVIDER_NS), payroll(&["e2e-sh-south", "e2e-sh-west"]))
        .await
        .unwrap();
    apply_raw::<HostedService>(&client, Some(PROVIDER_NS), service("ledger", json!({}))).await.unwrap();
    let casework = service(
        "casework",
        json!({"classification": "official-sensitive", "sharing": {"consumers": ["e2e-sh-south"]}}),
    );
    apply_raw::<HostedService>(&client, Some(PROVIDER_NS), casework).await.unwrap();
    // Each consumer runs a portal of its own (the pods whose reach is measured).
    for t in ["e2e-sh-south", "e2e-sh-west", "e2e-sh-east"] {
        apply_raw::<HostedService>(&client, Some(&format!("{t}-apps")), service("portal", json!({})))
            .await
            .unwrap();
    }
    for (ns, name) in [
        (PROVIDER_NS, "payroll"),
        (PROVIDER_NS, "ledger"),
        (PROVIDER_NS, "casework"),
        ("e2e-sh-south-apps", "portal"),
        ("e2e-sh-west-apps", "portal"),
        ("e2e-sh-east-apps", "portal"),
    ] {
        wait_service_ready(&client, ns, name).await;
    }
    expect_pairs(
        &client,
        &[
            "e2e-sh-north-hr/casework->e2e-sh-north-hr/ledger",
            "e2e-sh-north-hr/casework->e2e-sh-north-hr/payroll",
            "e2e-sh-north-hr/ledger->e2e-sh-north-hr/casework",
            "e2e-sh-north-hr/ledger->e2e-sh-north-hr/payroll",
            "e2e-sh-north-hr/payroll->e2e-sh-north-hr/casework",
            "e2e-sh-north-hr/payroll->e2e-sh-north-hr/ledger",
        ],
    )
    .await;

    // South and west subscribe to payroll: Active, with the endpoint; east is not listed.
    for t in ["e2e-sh-south", "e2e-sh-west", "e2e-sh-east"] {
        apply_raw::<Subscription>(
            &client,
            Some(&format!("{t}-apps")),
            subscription("payroll", "payroll", json!({})),
        )
        .await
        .unwrap();
    }
    let south = wait_phase(&client, "e2e-sh-south-apps", "payroll", SubscriptionPhase::Active, None).await;
    let status = south.status.clone().unwrap();
    assert_eq!(status.endpoint.as_deref(), Some("payroll.e2e-sh-north-hr.svc.cluster.local"));
    assert!(status.active_since.is_some());
    let west = wait_phase(&client, "e2e-sh-west-apps", "payroll", SubscriptionPhase::Active, None).await;
    wait_phase(&client, "e2e-sh-east-apps", "payroll", SubscriptionPhase::Pending, Some("NotListed")).await;
    // Casework is above south's clearance.
    apply_raw::<Subscription>(
        &client,
        Some("e2e-sh-south-apps"),
        subscription("casework", "casework", json!({})),
    )
    .await
    .unwrap();
    wait_phase(
        &client,
        "e2e-sh-south-apps",
        "casework",
        SubscriptionPhase::Refused,
        Some("ClassificationTooLow"),
    )
    .await;

    // Exactly the paths consented to: south and west reach payroll and nothing else of north's.
    let base = [
        "e2e-sh-north-hr/casework->e2e-sh-north-hr/ledger",
        "e2e-sh-north-hr/casework->e2e-sh-north-hr/payroll",
        "e2e-sh-north-hr/ledger->e2e-sh-north-hr/casework",
        "e2e-sh-north-hr/ledger->e2e-sh-north-hr/payroll",
        "e2e-sh-north-hr/payroll->e2e-sh-north-hr/casework",
        "e2e-sh-north-hr/payroll->e2e-sh-north-hr/ledger",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        v.sort();
        v
    };
    expect_pairs(
        &client,
        &with(&[
            "e2e-sh-south-apps/portal->e2e-sh-north-hr/payroll",
            "e2e-sh-west-apps/portal->e2e-sh-north-hr/payroll",
        ]),
    )
    .await;

    // The provider's status lists its consumers; both sides recorded the activation.
    let hs = Api::<HostedService>::namespaced(client.clone(), PROVIDER_NS).get("payroll").await.unwrap();
    let consumers: Vec<(String, bool)> =
        hs.status.clone().unwrap().consumers.iter().map(|c| (c.tenancy.clone(), c.admitted)).collect();
    assert!(
        consumers.contains(&("e2e-sh-south".into(), true))
            && consumers.contains(&("e2e-sh-west".into(), true)),
        "{consumers:?}"
    );
    assert!(consumers.contains(&("e2e-sh-east".into(), false)), "{consumers:?}");
    assert!(!event_notes(&client, &hs.uid().unwrap(), "ConsumerActivated").await.unwrap().is_empty());
    assert!(!event_notes(&client, &south.uid().unwrap(), "Activated").await.unwrap().is_empty());

    // A consumer's owner cannot write the status Commons records.
    let owner = client_as("someone@south.example.gov.uk", &["e2e-sh-south-admins"]).await.unwrap();
    let forged = json!({"status": {"phase": "Active", "activeSince": "2020-01-01T00:00:00Z"}});
    let err = Api::<Subscription>::namespaced(owner, "e2e-sh-south-apps")
        .patch_status("payroll", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 403), "{err}");

    // The provider drops west: Ended for good, its path closed.
    apply_raw::<HostedService>(&client, Some(PROVIDER_NS), payroll(&["e2e-sh-south"])).await.unwrap();
    let ended =
        wait_phase(&client, "e2e-sh-west-apps", "payroll", SubscriptionPhase::Ended, Some("Ended")).await;
    let st = ended.status.unwrap();
    assert!(st.ended_at.is_some() && st.endpoint.is_none());
    assert!(!event_notes(&client, &west.uid().unwrap(), "Ended").await.unwrap().is_empty());
    expect_pairs(&client, &with(&["e2e-sh-south-apps/portal->e2e-sh-north-hr/payroll"])).await;
    // West's own path-out is gone too.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "e2e-sh-west-apps");
    wait_for("west's path out removed", WAIT, || {
        let policies = policies.clone();
        async move { policies.get_opt("commons-subscription-payroll").await.ok()?.is_none().then_some(()) }
    })
    .await
    .unwrap();

    // The consumer ends it: south deletes its subscription; no path is left.
    Api::<Subscription>::namespaced(client.clone(), "e2e-sh-south-apps")
        .delete("payroll", &DeleteParams::default())
        .await
        .unwrap();
    expect_pairs(&client, &base).await;
    assert!(!event_notes(&client, &hs.uid().unwrap(), "ConsumerEnded").await.unwrap().is_empty());
    wait_for("the consumer's Event recording the ending", WAIT, || {
        let client = client.clone();
        let uid = south.uid().unwrap();
        async move {
            let notes = event_notes(&client, &uid, "Ended").await.ok()?;
            notes.iter().any(|n| n.contains("deleted by its tenancy")).then_some(())
        }
    })
    .await
    .unwrap();

    delete_tenancies(&client, &[NORTH, "e2e-sh-south", "e2e-sh-west", "e2e-sh-east"]).await;
}

#[tokio::test]
async fn an_instance_subscription_runs_a_copy_and_the_catalogue_counts_it() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    let (provider, consumer) = ("e2e-inst-north", "e2e-inst-south");
    let (provider_ns, consumer_ns) = ("e2e-inst-north-hr", "e2e-inst-south-apps");
    fresh_tenancies(&client, &[(provider, &["hr"], json!({})), (consumer, &["apps"], json!({}))]).await;
    apply_raw::<HostedService>(&client, Some(provider_ns), payroll(&[])).await.unwrap();
    apply_raw::<HostedService>(&client, Some(provider_ns), service("ledger", json!({}))).await.unwrap();

    let mut own =
        subscription("my-payroll", "payroll", json!({"mode": "instance", "instance": {"replicas": 2}}));
    own["spec"]["service"]["namespace"] = json!(provider_ns);
    apply_raw::<Subscription>(&client, Some(consumer_ns), own).await.unwrap();
    let sub = wait_phase(&client, consumer_ns, "my-payroll", SubscriptionPhase::Active, None).await;
    assert_eq!(sub.status.as_ref().unwrap().instance.as_deref(), Some("my-payroll"));
    let copy = wait_service_ready(&client, consumer_ns, "my-payroll").await;
    assert_eq!(copy.spec.image, "registry.example.gov.uk/app:1.0");
    assert_eq!(copy.spec.replicas, 2);
    assert!(copy.owner_references().iter().any(|o| Some(&o.uid) == sub.uid().as_ref()));
    assert_eq!(copy.status.unwrap().ready_replicas, 2);
    wait_for("the subscription shows the copy ready, with its endpoint", WAIT, || {
        let client = client.clone();
        async move {
            let s = Api::<Subscription>::namespaced(client, consumer_ns).get("my-payroll").await.ok()?;
            let st = s.status?;
            (st.service_ready == Some(true)
                && st.endpoint.as_deref() == Some("my-payroll.e2e-inst-south-apps.svc.cluster.local"))
            .then_some(())
        }
    })
    .await
    .unwrap();

    // The copy is the consumer's: a new image the provider rolls out does not reach it.
    let newer = json!({"spec": {"image": "registry.example.gov.uk/app:2.0"}});
    Api::<HostedService>::namespaced(client.clone(), provider_ns)
        .patch("payroll", &PatchParams::default(), &Patch::Merge(&newer))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let copy = Api::<HostedService>::namespaced(client.clone(), consumer_ns).get("my-payroll").await.unwrap();
    assert_eq!(
        copy.spec.image, "registry.example.gov.uk/app:1.0",
        "the provider's change stays out of the copy"
    );

    // The catalogue lists payroll (published) with one instance, and not the ledger.
    let out = commons_e2e::commons(&["catalogue", "--json"]).unwrap();
    let list: Value = serde_json::from_str(&out).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["namespace"] == provider_ns && e["name"] == "payroll")
        .unwrap();
    assert_eq!(entry["title"], "Payroll");
    assert_eq!(entry["organisation"], "e2e-inst-north organisation");
    assert_eq!((entry["instances"].as_u64(), entry["organisations"].as_u64()), (Some(1), Some(1)));
    assert!(!list.as_array().unwrap().iter().any(|e| e["name"] == "ledger"));
    let table = commons_e2e::commons(&["catalogue"]).unwrap();
    assert!(table.contains("Payroll") && table.contains("e2e-inst-north-hr/payroll"), "{table}");

    // Deleting the subscription removes the copy.
    Api::<Subscription>::namespaced(client.clone(), consumer_ns)
        .delete("my-payroll", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_for("the copy gone", WAIT, || {
        let client = client.clone();
        async move {
            Api::<HostedService>::namespaced(client, consumer_ns)
                .get_opt("my-payroll")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await
    .unwrap();
    delete_tenancies(&client, &[provider, consumer]).await;
}

#[tokio::test]
async fn bad_subscriptions_are_refused_naming_the_field() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    let (provider, consumer) = ("e2e-badsub-north", "e2e-badsub-south");
    fresh_tenancies(&client, &[(provider, &["hr", "web"], json!({})), (consumer, &["apps"], json!({}))])
        .await;
    let provider_ns = "e2e-badsub-north-hr";
    apply_raw::<HostedService>(&client, Some(provider_ns), service("ledger", json!({}))).await.unwrap();
    let sub = |spec: Value| json!({"apiVersion": "commons.dev/v1alpha1", "kind": "Subscription", "metadata": {"name": "bad"}, "spec": spec});
    let cases = [
        ("a missing provider", "e2e-badsub-south-apps", sub(json!({})), "spec.service"),
        (
            "a missing service name",
            "e2e-badsub-south-apps",
            sub(json!({"service": {"namespace": provider_ns}})),
            "spec.service.name",
        ),
        (
            "a name an instance could not take",
            "e2e-badsub-south-apps",
            json!({"apiVersion": "commons.dev/v1alpha1", "kind": "Subscription", "metadata": {"name": "2024.payroll"},
                   "spec": {"service": {"namespace": provider_ns, "name": "ledger"}}}),
            "metadata.name",
        ),
        (
            "an unknown mode",
            "e2e-badsub-south-apps",
            sub(json!({"service": {"namespace": provider_ns, "name": "ledger"}, "mode": "borrow"})),
            "spec.mode",
        ),
        (
            "instance settings without instance mode",
            "e2e-badsub-south-apps",
            sub(
                json!({"service": {"namespace": provider_ns, "name": "ledger"}, "instance": {"replicas": 1}}),
            ),
            "spec.instance",
        ),
        (
            "a subscription naming its own namespace",
            provider_ns,
            sub(json!({"service": {"namespace": provider_ns, "name": "ledger"}})),
            "spec.service.namespace",
        ),
        (
            "a subscription within its own tenancy",
            "e2e-badsub-north-web",
            sub(json!({"service": {"namespace": provider_ns, "name": "ledger"}})),
            "spec.service.namespace",
        ),
        (
            "an instance of an unpublished service",
            "e2e-badsub-south-apps",
            sub(json!({"service": {"namespace": provider_ns, "name": "ledger"}, "mode": "instance"})),
            "spec.mode",
        ),
    ];
    for (what, ns, manifest, field) in cases {
        let err = create_raw::<Subscription>(&client, Some(ns), manifest).await.expect_err(what);
        assert!(err.contains(field), "{what}: {err}");
    }
    // The service and mode are fixed once made.
    apply_raw::<Subscription>(
        &client,
        Some("e2e-badsub-south-apps"),
        sub(json!({"service": {"namespace": provider_ns, "name": "ledger"}})),
    )
    .await
    .unwrap();
    let moved = sub(json!({"service": {"namespace": provider_ns, "name": "other"}}));
    let err = apply_raw::<Subscription>(&client, Some("e2e-badsub-south-apps"), moved).await.unwrap_err();
    assert!(err.to_string().contains("spec.service cannot be changed"), "{err}");
    delete_tenancies(&client, &[provider, consumer]).await;
}

//! Budgets against the real control plane and Commons' own ledger: a tenancy whose pod spends
//! quickly (a rate card of ten pounds a core-second) reaches each alert threshold once, with one
//! Event each, then BudgetExceeded; its spend is in status and in Prometheus; a budget in another
//! currency than the rate cards' is reported, naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::{RateCard, Tenancy};
use commons_e2e::{
    apply_raw, client, event_notes, restricted_pod, tenancy_manifest, wait_for, wait_for_condition,
    wait_for_default_service_account,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const CARD: &str = "e2e-budget-card";

#[tokio::test]
async fn a_budget_is_watched_threshold_by_threshold_and_in_its_own_currency() {
    let client = client().await.unwrap();
    let an_hour_ago = (Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let card = json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "RateCard", "metadata": {"name": CARD},
        "spec": {"currency": "GBP", "effectiveFrom": an_hour_ago, "platformOverheadPercent": "0",
            "prices": {"cpuCoreHour": "36000", "memoryGibHour": "0", "storageGibHour": "0", "loadBalancerHour": "0"}}
    });
    // Rate cards cannot be changed: one left by an earlier run is replaced.
    commons_e2e::ledgers::replace_rate_card(&client, card).await.unwrap();
    // A name of this run's own: spend is attributed by tenancy name, and earlier runs spent today.
    let name = format!("e2e-budget-{}", std::process::id());
    let budget = json!({"budget": {"monthlyAmount": "30.00", "currency": "GBP", "alertThresholds": [50, 100]},
        "quota": {"cpu": "2", "memory": "2Gi", "pods": 5}});
    apply_raw::<Tenancy>(&client, None, tenancy_manifest(&name, &["apps"], budget)).await.unwrap();
    wait_for_condition(&client, &name, "Ready", "True", None, WAIT).await.unwrap();
    wait_for_condition(&client, &name, "BudgetExceeded", "False", Some("WithinBudget"), WAIT).await.unwrap();

    // 250m at ten pounds a core-second: 2.50 a second, the budget gone in 12 s.
    let ns = format!("{name}-apps");
    wait_for_default_service_account(&client, &ns).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut pod = restricted_pod("spender");
    pod["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "250m", "memory": "64Mi"}});
    pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
    wait_for_condition(&client, &name, "BudgetExceeded", "True", Some("Exceeded"), WAIT).await.unwrap();
    let tenancies: Api<Tenancy> = Api::all(client.clone());
    let t = tenancies.get(&name).await.unwrap();
    let status = t.status.clone().unwrap().budget.unwrap();
    assert_eq!(status.thresholds_reached, vec![50, 100]);
    assert_eq!(status.currency, "GBP");
    assert!(status.month_to_date.parse::<f64>().unwrap() >= 30.0, "{status:?}");
    assert!(status.projected.parse::<f64>().unwrap() > status.month_to_date.parse::<f64>().unwrap());

    // Each threshold once, however often spend is measured after.
    let uid = t.uid().unwrap();
    let notes = wait_for("both threshold Events", WAIT, || async {
        let n = event_notes(&client, &uid, "BudgetThresholdReached").await.ok()?;
        (n.len() >= 2).then_some(n)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let again = event_notes(&client, &uid, "BudgetThresholdReached").await.unwrap();
    assert_eq!(again.len(), 2, "one Event per threshold: {again:?}");
    assert!(notes.iter().any(|n| n.contains("reached 50% of the budget")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("reached 100% of the budget")), "{notes:?}");

    // The spend is in Prometheus, labelled for finance.
    let metrics = std::process::Command::new("curl")
        .args([
            "-s",
            &format!(
                "http://{}/metrics",
                std::env::var("COMMONS_LISTEN").unwrap_or("127.0.0.1:18080".into())
            ),
        ])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let label = format!("tenancy=\"{name}\"");
    assert!(
        metrics.lines().any(|l| l.starts_with("commons_tenancy_spend_month_to_date{")
            && l.contains(&label)
            && l.contains("sector=\"local-government\"")),
        "no spend gauge for {name}"
    );
    assert!(
        metrics.lines().any(|l| l.starts_with("commons_tenancy_allocation{")
            && l.contains(&label)
            && l.contains("resource=\"cpu\"")
            && l.ends_with(" 0.25")),
        "no allocation gauge for {name}"
    );

    // A budget in a currency the cards do not charge in cannot be weighed: said, naming the field.
    let euro = json!({"spec": {"budget": {"currency": "EUR"}}});
    tenancies.patch(&name, &PatchParams::default(), &Patch::Merge(&euro)).await.unwrap();
    wait_for_condition(&client, &name, "BudgetExceeded", "Unknown", Some("CurrencyMismatch"), WAIT)
        .await
        .unwrap();
    let c = tenancies
        .get(&name)
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "BudgetExceeded")
        .unwrap();
    assert!(c.message.contains("spec.budget.currency is EUR"), "{}", c.message);

    commons_e2e::delete_tenancy(&client, &name).await.unwrap();
    let _ = Api::<RateCard>::all(client).delete(CARD, &DeleteParams::default()).await;
}

//! Rate cards against the real control plane with the real operator: each card's status says
//! whether its prices are in force, scheduled, superseded, or unusable (a clash of instants or of
//! currencies), so a platform team sees what applies before anything is billed at it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use commons_crds::RateCard;
use commons_e2e::{apply_raw, client, install_crds, wait_for};
use kube::Api;
use kube::api::DeleteParams;
use serde_json::{Value, json};

fn card(name: &str, from: &str, currency: &str) -> Value {
    json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "RateCard", "metadata": {"name": name},
        "spec": {
            "currency": currency, "effectiveFrom": from, "platformOverheadPercent": "10",
            "prices": {"cpuCoreHour": "0.03", "memoryGibHour": "0.004", "storageGibHour": "0.0001", "loadBalancerHour": "0.02"}
        }
    })
}

#[tokio::test]
async fn each_rate_card_says_whether_its_prices_apply() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    let api: Api<RateCard> = Api::all(client.clone());
    // "now" took effect a minute ago: later than any card a platform team (or the examples) has,
    // so it is the one in force whatever else the cluster holds.
    let a_minute_ago = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60)).to_string();
    let cards = [
        ("e2e-rc-old", "2001-01-01T00:00:00Z", "GBP", "Superseded"),
        ("e2e-rc-now", a_minute_ago.as_str(), "GBP", "InForce"),
        ("e2e-rc-next", "2098-01-01T00:00:00Z", "GBP", "Scheduled"),
        ("e2e-rc-clash-a", "2099-01-01T00:00:00Z", "GBP", "Conflict"),
        ("e2e-rc-clash-b", "2099-01-01T00:00:00Z", "GBP", "Conflict"),
        ("e2e-rc-euro", "2099-06-01T00:00:00Z", "EUR", "Conflict"),
    ];
    // Cards cannot be changed once written: any left by an earlier run go first.
    for (name, _, _, _) in cards {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    wait_for("earlier runs' cards gone", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            for (name, _, _, _) in cards {
                if api.get_opt(name).await.ok()?.is_some() {
                    return None;
                }
            }
            Some(())
        }
    })
    .await
    .unwrap();
    for (name, from, currency, _) in cards {
        apply_raw::<RateCard>(&client, None, card(name, from, currency)).await.unwrap();
    }
    // A card cannot be changed once written, prices or date.
    let change = kube::api::Patch::Merge(json!({"spec": {"prices": {"cpuCoreHour": "0.01"}}}));
    match api.patch("e2e-rc-old", &kube::api::PatchParams::default(), &change).await {
        Err(kube::Error::Api(status)) => {
            assert!(status.message.contains("cannot be changed once written"), "{}", status.message)
        }
        other => panic!("a price change should be refused, got {other:?}"),
    }
    for (name, _, _, reason) in cards {
        let api = api.clone();
        wait_for(&format!("RateCard {name} {reason}"), Duration::from_secs(60), || {
            let api = api.clone();
            async move {
                let c = api.get_opt(name).await.ok()??;
                let s = c.status?;
                let cond = s.conditions.iter().find(|c| c.type_ == "InForce")?;
                (s.observed_generation == c.metadata.generation && cond.reason == reason).then_some(())
            }
        })
        .await
        .unwrap();
    }
    let clash = api.get("e2e-rc-clash-a").await.unwrap().status.unwrap();
    assert!(clash.conditions[0].message.contains("e2e-rc-clash-b"), "{}", clash.conditions[0].message);
    let euro = api.get("e2e-rc-euro").await.unwrap().status.unwrap();
    assert!(euro.conditions[0].message.contains("EUR is not GBP"), "{}", euro.conditions[0].message);
    // Removing one of the clashing cards makes the other usable.
    api.delete("e2e-rc-clash-b", &DeleteParams::default()).await.unwrap();
    wait_for("the other clashing card scheduled", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            let s = api.get("e2e-rc-clash-a").await.ok()?.status?;
            (s.conditions.first()?.reason == "Scheduled").then_some(())
        }
    })
    .await
    .unwrap();
    for (name, _, _, _) in cards {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
}

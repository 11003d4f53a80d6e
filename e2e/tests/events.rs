//! The Event recorder every controller shares, against the real apiserver: an Event said again
//! within 6 minutes is the next of the first's series, not a second Event; something else said is
//! an Event of its own; and an Event that is gone is published anew, not patched into nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use commons_e2e::client;
use commons_operator::events::{Occurrence, Recorder};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

const NAMESPACE: &str = "default";

/// The Events about `uid`, as (note, series count, name).
async fn events_about(client: &Client, uid: &str) -> Vec<(String, Option<i32>, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    let mut found: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid))
        .map(|e| {
            assert_eq!(e.reporting_controller.as_deref(), Some("commons-e2e"));
            (e.note.clone().unwrap_or_default(), e.series.as_ref().map(|s| s.count), e.name_any())
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn an_event_said_again_joins_its_series_and_one_deleted_is_published_anew() {
    let client = client().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let about: ConfigMap = serde_json::from_value(json!({
        "metadata": {"generateName": "e2e-events-"}, "data": {"k": "v"}
    }))
    .unwrap();
    let about = maps.create(&PostParams::default(), &about).await.unwrap();
    let uid = about.uid().unwrap();
    let regarding: ObjectReference = about.object_ref(&());
    let recorder = Recorder::new(client.clone(), "commons-e2e", None);
    let said = |note| Occurrence {
        type_: EventType::Normal,
        reason: "Tested",
        action: "Testing",
        note,
        regarding: &regarding,
    };

    recorder.publish(&said("twice")).await.unwrap();
    recorder.publish(&said("twice")).await.unwrap();
    recorder.publish(&said("once")).await.unwrap();
    let events = events_about(&client, &uid).await;
    assert_eq!(
        events.iter().map(|(note, count, _)| (note.as_str(), *count)).collect::<Vec<_>>(),
        [("once", None), ("twice", Some(2))],
        "{events:?}"
    );

    // Someone deletes the series' Event: the next time it is said, it is an Event again.
    let api: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    let twice = events.iter().find(|(note, ..)| note == "twice").map(|(.., name)| name.clone()).unwrap();
    api.delete(&twice, &DeleteParams::default()).await.unwrap();
    recorder.publish(&said("twice")).await.unwrap();
    let events = events_about(&client, &uid).await;
    let again: Vec<_> = events.iter().filter(|(note, ..)| note == "twice").collect();
    assert_eq!(again.len(), 1, "{events:?}");
    assert_eq!(again[0].1, None, "a new Event starts no series: {events:?}");
    assert_ne!(again[0].2, twice, "a new name: {events:?}");

    for (.., name) in &events {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    maps.delete(&about.name_any(), &DeleteParams::default()).await.unwrap();
}

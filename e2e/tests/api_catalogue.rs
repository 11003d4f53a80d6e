//! The applications store over HTTP, from the example services (docs/examples/hosted-services.yaml:
//! Northshire's payroll, published and shared with Southshire and Westshire): any council finds it;
//! a council sees its own subscriptions and their state, subscribes its own namespace (a real
//! Subscription, decided by the provider's consent), and cannot subscribe another's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::{Duration, Instant};

use commons_e2e::api::{grant_api_roles, token};
use commons_e2e::kubectl;
use serde_json::{Value, json};

fn call(method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    commons_e2e::api::call(method, path, token, body).unwrap()
}

#[test]
fn councils_find_published_services_and_subscribe_only_their_own_namespaces() {
    grant_api_roles().unwrap();
    let sam = token("sam").unwrap();
    let (status, found) = call("GET", "/v1/catalogue?q=payroll", &sam, None);
    assert_eq!(status, 200, "{found}");
    let payroll = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "payroll")
        .expect("payroll is published");
    assert_eq!(payroll["namespace"], "northshire-council-revenues");
    assert_eq!(payroll["organisation"], "Northshire County Council");
    let (_, nothing) = call("GET", "/v1/catalogue?q=payroll&classification=official-sensitive", &sam, None);
    assert!(
        nothing["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "payroll" || e["classification"] == "official-sensitive")
    );

    let (status, mine) = call("GET", "/v1/subscriptions", &sam, None);
    assert_eq!(status, 200, "{mine}");
    let items = mine["items"].as_array().unwrap();
    assert!(items.iter().all(|s| s["organisation"] == "southshire-district-council"), "{mine}");
    let shared = items
        .iter()
        .find(|s| s["service"] == "northshire-council-revenues/payroll")
        .expect("Southshire's payroll");
    assert_eq!(
        (shared["phase"].as_str(), shared["mode"].as_str()),
        (Some("Active"), Some("shared")),
        "{shared}"
    );

    // Southshire subscribes its own namespace to Westshire's staff portal: made, then decided by
    // the provider's consent (Westshire does not list Southshire: refused, with the reason).
    let name = format!("portal-{}", std::process::id());
    let asked = json!({"namespace": "southshire-council-apps", "name": name,
                       "service": {"namespace": "westshire-council-apps", "name": "staff-portal"}});
    let (status, made) = call("POST", "/v1/subscriptions", &sam, Some(&asked));
    assert_eq!(status, 201, "{made}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let decided = loop {
        let (_, list) = call("GET", "/v1/subscriptions", &sam, None);
        let found = list["items"].as_array().unwrap().iter().find(|s| s["name"] == name.as_str()).cloned();
        if let Some(s) = found.filter(|s| !s["phase"].is_null()) {
            break s;
        }
        assert!(Instant::now() < deadline, "never decided: {list}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        decided["phase"].is_string() && decided["reason"].is_string() || decided["phase"] == "Active",
        "{decided}"
    );
    kubectl(&["delete", "subscription", &name, "-n", "southshire-council-apps", "--wait=false"]).unwrap();

    // Northshire's namespace is not Southshire's to subscribe; an invalid body names its field.
    let theirs = json!({"namespace": "northshire-council-planning", "name": name,
                        "service": {"namespace": "westshire-council-apps", "name": "staff-portal"}});
    assert_eq!(call("POST", "/v1/subscriptions", &sam, Some(&theirs)).0, 403);
    let bad = json!({"namespace": "southshire-council-apps", "name": name, "service": {"namespace": "westshire-council-apps"}});
    let (status, body) = call("POST", "/v1/subscriptions", &sam, Some(&bad));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"].as_str().unwrap_or_default().contains("service")),
        "{body}"
    );
    // A finance user may not subscribe.
    assert_eq!(call("POST", "/v1/subscriptions", &token("finn").unwrap(), Some(&asked)).0, 403);
}

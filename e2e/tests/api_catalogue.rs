//! The applications store over HTTP, from the example services (docs/examples/hosted-services.yaml:
//! Northshire's payroll, published and shared with Southshire and Westshire): any council finds it;
//! a council sees its own subscriptions and their state, subscribes its own namespace (a real
//! Subscription, decided by the provider's consent), and cannot subscribe another's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::process::Command;
use std::time::{Duration, Instant};

use commons_e2e::{kubectl, repo_root};
use serde_json::{Value, json};

fn token(user: &str) -> String {
    let issuer =
        std::env::var("COMMONS_E2E_OIDC_ISSUER").expect("COMMONS_E2E_OIDC_ISSUER is set by e2e/keycloak.sh");
    let out = Command::new("curl")
        .args(["-sS", "-d", "grant_type=password", "-d", "client_id=commons-e2e"])
        .args(["-d", &format!("username={user}"), "-d", &format!("password={user}-password")])
        .arg(format!("{issuer}/protocol/openid-connect/token"))
        .output()
        .unwrap();
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn call(method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    let api = format!(
        "http://{}",
        std::env::var("COMMONS_LISTEN").expect("COMMONS_LISTEN is set by e2e/commons.sh")
    );
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-w", "\n%{http_code}", "-X", method, "-H", &format!("Authorization: Bearer {token}")]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", &b.to_string()]);
    }
    let out = cmd.arg(format!("{api}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn councils_find_published_services_and_subscribe_only_their_own_namespaces() {
    let file = repo_root().join("docs/examples/api-access.yaml");
    kubectl(&["apply", "--server-side", "--field-manager=commons-examples", "-f", file.to_str().unwrap()])
        .unwrap();
    let sam = token("sam");
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
    assert_eq!(call("POST", "/v1/subscriptions", &token("finn"), Some(&asked)).0, 403);
}

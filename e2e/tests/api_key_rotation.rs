//! The identity provider rotates its signing key: Keycloak (the real one the scripts run) is given
//! a new RSA key of higher priority through its admin API, so the tokens it issues next name a key
//! id Commons has never seen. Commons fetches the provider's keys again and accepts them, while
//! tokens signed with the previous key (still published) keep working. In a test binary of its
//! own: while the new key is in force, every token any test gets is signed with it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use commons_e2e::api::{exchange, grant_api_roles, issuer, token};
use serde_json::{Value, json};

/// The realm's admin API (`.../admin/realms/commons`).
fn admin_base() -> String {
    issuer().replace("/realms/", "/admin/realms/")
}

/// A token of the realm's key-managing service account (client credentials).
fn try_admin_token() -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "-d", "grant_type=client_credentials", "-d", "client_id=commons-e2e-keys"])
        .args(["-d", "client_secret=commons-e2e-keys-secret"])
        .arg(format!("{}/protocol/openid-connect/token", issuer()))
        .output()
        .ok()?;
    let body: Value = serde_json::from_slice(&out.stdout).ok()?;
    body["access_token"].as_str().map(str::to_owned)
}

fn admin_token() -> String {
    try_admin_token().expect("a token of the key-managing service account")
}

/// `method` on the admin API as `admin`: the status, the Location header and the body.
fn admin(method: &str, path: &str, admin: &str, body: Option<&Value>) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-D", "-", "-w", "\n%{http_code}", "-X", method]);
    cmd.args(["-H", &format!("Authorization: Bearer {admin}")]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", &b.to_string()]);
    }
    let out = cmd.arg(format!("{}{path}", admin_base())).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, status) = text.rsplit_once('\n').unwrap();
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    let location = head
        .lines()
        .find_map(|l| l.to_lowercase().starts_with("location:").then(|| l[9..].trim().to_owned()))
        .unwrap_or_default();
    (status.trim().parse().unwrap(), location, body.to_owned())
}

/// The key id in a token's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Removes the added key however the test ends, so later tests get tokens of the realm's own key.
struct AddedKey {
    url: String,
}

impl Drop for AddedKey {
    fn drop(&mut self) {
        // Nothing here may panic (a panic while the test is already failing aborts the run): a
        // key left behind is removed at the next run's start.
        let removed = try_admin_token().and_then(|admin| {
            Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE"])
                .args(["-H", &format!("Authorization: Bearer {admin}")])
                .arg(&self.url)
                .output()
                .ok()
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        });
        if removed.as_deref() != Some("204") {
            eprintln!("the added key {} was not removed ({removed:?})", self.url);
        }
    }
}

/// The realm's key providers.
fn key_providers(admin_token: &str) -> Vec<Value> {
    let (status, _, body) = admin("GET", "/components?type=org.keycloak.keys.KeyProvider", admin_token, None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap().as_array().cloned().unwrap_or_default()
}

#[test]
fn a_rotated_signing_key_is_fetched_and_the_previous_one_still_verifies() {
    grant_api_roles().unwrap();
    // A new RSA signing key, of a priority above every other (a key an interrupted run left
    // behind goes first).
    let admin_token = admin_token();
    let mut highest = 0;
    for provider in key_providers(&admin_token) {
        let name = provider["name"].as_str().unwrap_or_default();
        if name.starts_with("e2e-rotated-") {
            let id = provider["id"].as_str().unwrap();
            assert_eq!(admin("DELETE", &format!("/components/{id}"), &admin_token, None).0, 204);
            continue;
        }
        let priority = provider["config"]["priority"][0].as_str().and_then(|p| p.parse::<i64>().ok());
        highest = highest.max(priority.unwrap_or(0));
    }
    let before = token("nora").unwrap();
    assert_eq!(exchange("GET", "/v1/whoami", &before, &[], None).unwrap().status, 200);
    let (status, _, realm) = admin("GET", "", &admin_token, None);
    assert_eq!(status, 200, "{realm}");
    let realm: Value = serde_json::from_str(&realm).unwrap();
    let key = json!({
        "name": format!("e2e-rotated-{}", std::process::id()),
        "providerId": "rsa-generated",
        "providerType": "org.keycloak.keys.KeyProvider",
        "parentId": realm["id"],
        "config": {"priority": [(highest + 100).to_string()], "keySize": ["2048"], "algorithm": ["RS256"],
                   "active": ["true"], "enabled": ["true"]}
    });
    let (status, url, body) = admin("POST", "/components", &admin_token, Some(&key));
    assert_eq!(status, 201, "{body}");
    let _added = AddedKey { url };

    let after = token("nora").unwrap();
    assert_ne!(kid(&after), kid(&before), "Keycloak signs with the new key");
    // Commons fetches the keys again for a key id it has not seen (at most once every 30 s, so an
    // earlier fetch may hold it back that long); meanwhile the answer is the plain 401.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let answer = exchange("GET", "/v1/whoami", &after, &[], None).unwrap();
        if answer.status == 200 {
            assert!(answer.json()["user"].as_str().is_some_and(|u| u.ends_with("nora")), "{}", answer.body);
            break;
        }
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert!(Instant::now() < deadline, "the new key was never fetched: {}", answer.body);
        std::thread::sleep(Duration::from_secs(1));
    }
    // The previous key is still published and still verifies.
    assert_eq!(exchange("GET", "/v1/whoami", &before, &[], None).unwrap().status, 200);
}

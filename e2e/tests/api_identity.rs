//! The REST API's identity and authorisation against the real parts: bearer tokens issued by the
//! OIDC provider the scripts run (Keycloak, realm `commons`), API keys made with `commons apikey`
//! in the running operator's ledger, and RBAC in the local control plane asked with
//! SubjectAccessReviews (docs/examples/api-access.yaml). Every refusal of a credential is the same
//! 401; another organisation's tenancy is a 404 exactly like one that does not exist.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use commons_e2e::api::{exchange, ledger};
use commons_e2e::{commons, kubectl};
use serde_json::Value;

fn token_of(client: &str, user: &str) -> String {
    commons_e2e::api::token_of(client, user).unwrap()
}

fn token(user: &str) -> String {
    token_of("commons-e2e", user)
}

/// GET `path` with `credential` (none when empty): status, headers, JSON body.
fn get(path: &str, credential: &str) -> (u16, String, Value) {
    let a = exchange("GET", path, credential, &[], None).unwrap();
    let json = a.json();
    (a.status, a.headers, json)
}

fn grant_api_roles() {
    commons_e2e::api::grant_api_roles().unwrap();
}

fn organisations(list: &Value) -> Vec<String> {
    let mut orgs: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["organisation"].as_str().unwrap().to_owned())
        .collect();
    orgs.dedup();
    orgs
}

fn southshire_tenancy() -> String {
    let names = kubectl(&[
        "get",
        "tenancies",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.organisation.id}{\"\\n\"}{end}",
    ])
    .unwrap();
    names
        .lines()
        .find_map(|l| l.strip_suffix(" southshire-district-council"))
        .expect("an example tenancy of southshire-district-council (docs/examples/tenancies.yaml)")
        .to_owned()
}

#[test]
fn people_see_their_own_organisations_tenancies_and_central_finance_sees_all() {
    grant_api_roles();
    let nora = token("nora");
    let (status, _, me) = get("/v1/whoami", &nora);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "oidc:nora");
    assert_eq!(me["organisations"], serde_json::json!(["northshire-county-council"]));
    assert_eq!(me["allOrganisations"], false);

    let (status, _, list) = get("/v1/tenancies", &nora);
    assert_eq!(status, 200, "{list}");
    assert_eq!(organisations(&list), ["northshire-county-council"]);
    let north = &list["items"][0];
    assert!(north["quota"]["hard"].is_object(), "{north}");
    assert!(north["namespaces"].as_array().is_some_and(|n| !n.is_empty()), "{north}");

    let south = southshire_tenancy();
    let (other, _, body_other) = get(&format!("/v1/tenancies/{south}"), &nora);
    let (missing, _, body_missing) = get("/v1/tenancies/no-such-tenancy", &nora);
    assert_eq!((other, missing), (404, 404));
    assert_eq!(body_other["title"], body_missing["title"]);

    let sam = token("sam");
    let (status, _, one) = get(&format!("/v1/tenancies/{south}"), &sam);
    assert_eq!((status, one["organisation"].as_str()), (200, Some("southshire-district-council")), "{one}");

    let cara = token("cara");
    let (_, _, all) = get("/v1/tenancies", &cara);
    assert!(organisations(&all).len() >= 3, "central finance sees every organisation: {all}");
    let (_, _, me) = get("/v1/whoami", &cara);
    assert_eq!(me["allOrganisations"], true);
}

#[test]
fn rbac_decides_and_a_subject_access_review_says_what_the_api_will() {
    grant_api_roles();
    // Olive is in Northshire but has no role: authenticated, not allowed.
    let (status, headers, body) = get("/v1/tenancies", &token("olive"));
    assert_eq!(status, 403, "{body}");
    assert!(headers.contains("content-type: application/problem+json"), "{headers}");
    assert_eq!(body["detail"], "you may not list tenancies");
    // RBAC says the same, asked as the API asks it (the group api.commons.dev, which nothing
    // serves: an API right is never a right to the cluster's own objects).
    assert!(review("oidc:nora", "oidc:/roles/requester", "list", "tenancies"));
    assert!(!review("oidc:olive", "oidc:/organisations/northshire-county-council", "list", "tenancies"));
    assert!(!review("oidc:nora", "oidc:/roles/requester", "list", "organisations"));
    // A council's API role gives it nothing in the cluster itself (kubectl as Nora).
    let kubectl_as_nora = kubectl(&[
        "auth",
        "can-i",
        "list",
        "tenancies.commons.dev",
        "--as",
        "oidc:nora",
        "--as-group",
        "oidc:/roles/requester",
    ])
    .unwrap_or_else(|e| e.to_string());
    assert!(!kubectl_as_nora.starts_with("yes"), "{kubectl_as_nora}");
    assert!(review("oidc:cara", "oidc:/roles/finance-central", "list", "organisations"));
}

/// The SubjectAccessReview the API sends, sent with kubectl: whether RBAC allows it.
fn review(user: &str, group: &str, verb: &str, resource: &str) -> bool {
    let sar = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": [group],
                 "resourceAttributes": {"group": "api.commons.dev", "resource": resource, "verb": verb}}
    });
    let name = format!("commons-sar-{}-{}.json", std::process::id(), user.replace(':', "-"));
    let file = std::env::temp_dir().join(name);
    std::fs::write(&file, sar.to_string()).unwrap();
    let allowed =
        kubectl(&["create", "-f", file.to_str().unwrap(), "-o", "jsonpath={.status.allowed}"]).unwrap();
    let _ = std::fs::remove_file(&file);
    allowed.trim() == "true"
}

#[test]
fn every_refused_credential_is_the_same_401() {
    grant_api_roles();
    let nora = token("nora");
    let mut parts: Vec<String> = nora.split('.').map(str::to_owned).collect();
    // The claims changed to another organisation, the provider's signature kept.
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["groups"] =
        serde_json::json!(["/organisations/southshire-district-council", "/roles/finance-central"]);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = parts.join(".");
    let other_audience = token_of("commons-other", "nora");
    let unsigned = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), parts[1]);
    let short = token_of("commons-short", "nora");
    let (status, _, _) = get("/v1/whoami", &short);
    assert_eq!(status, 200, "a fresh short-lived token is accepted");
    // Two seconds of life and five of leeway.
    std::thread::sleep(Duration::from_secs(9));
    let cases = [
        ("no credential", String::new()),
        ("a forged claim", forged),
        ("another client's token", other_audience),
        ("an unsigned token", unsigned),
        ("an expired token", short),
        ("not a token", "hello".to_owned()),
        ("a made-up API key", format!("cmk_0123456789ab_{}", "A".repeat(43))),
    ];
    let mut bodies = Vec::new();
    for (what, credential) in cases {
        let (status, headers, body) = get("/v1/tenancies", &credential);
        assert_eq!(status, 401, "{what}: {body}");
        assert!(headers.contains("www-authenticate: bearer"), "{what}: {headers}");
        assert!(headers.contains("content-type: application/problem+json"), "{what}: {headers}");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the 401s differ: {bodies:?}");
}

#[test]
fn api_keys_are_shown_once_listed_without_secrets_revoked_and_expire() {
    grant_api_roles();
    let key =
        commons_e2e::api::api_key("southshire-district-council", "finance", "nightly reports (e2e)", "e2e")
            .unwrap();
    let id = key.strip_prefix("cmk_").unwrap().split('_').next().unwrap().to_owned();
    let (status, _, me) = get("/v1/whoami", &key);
    assert_eq!(status, 200, "{me}");
    assert_eq!((me["credential"].as_str(), me["apiKey"].as_str()), (Some("api-key"), Some(id.as_str())));
    let (status, _, list) = get("/v1/tenancies", &key);
    assert_eq!(status, 200, "{list}");
    assert_eq!(organisations(&list), ["southshire-district-council"]);

    let listed = commons(&["apikey", "list", "--json", "--ledger", &ledger()]).unwrap();
    assert!(!listed.contains(&key[17..]), "a listing never shows a key's secret");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let mine = listed.as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!((mine["state"].as_str(), mine["role"].as_str()), (Some("active"), Some("finance")));

    commons(&["apikey", "revoke", &id, "--by", "e2e", "--ledger", &ledger()]).unwrap();
    let (status, _, _) = get("/v1/tenancies", &key);
    assert_eq!(status, 401, "a revoked key is refused at once");
    let again = commons(&["apikey", "revoke", &id, "--ledger", &ledger()]).unwrap_err().to_string();
    assert!(again.contains("revoked already"), "{again}");

    let made = commons(&[
        "apikey",
        "create",
        "--organisation",
        "southshire-district-council",
        "--role",
        "finance",
        "--expires",
        "2s",
        "--ledger",
        &ledger(),
    ])
    .unwrap();
    let short = made.lines().next().unwrap().trim().to_owned();
    assert_eq!(get("/v1/whoami", &short).0, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(get("/v1/whoami", &short).0, 401, "an expired key is refused");

    let refused =
        commons(&["apikey", "create", "--organisation", "x", "--role", "owner", "--ledger", &ledger()])
            .unwrap_err()
            .to_string();
    assert!(refused.contains("--role owner"), "{refused}");
}

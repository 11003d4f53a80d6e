//! The OpenID Connect provider the REST API trusts, started by the scripts (Keycloak, realm
//! `commons` from e2e/keycloak/commons-realm.json): it publishes its issuer and signing keys, and
//! issues the access tokens the API will read — signed with RS256, for the audience `commons-api`,
//! five minutes long, with `sub` and the groups that say a person's organisation and roles. A wrong
//! password gets no token; another client's token is not for Commons. Tokens come from the
//! provider itself (password grant for test users), never from keys a test holds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::process::Command;

use base64::Engine;
use serde_json::Value;

fn issuer() -> String {
    std::env::var("COMMONS_E2E_OIDC_ISSUER").expect("COMMONS_E2E_OIDC_ISSUER is set by e2e/keycloak.sh")
}

/// `curl` against the provider: the HTTP status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl").args(["-sS", "-w", "\n%{http_code}"]).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_owned())
}

fn token(client: &str, user: &str, password: &str) -> (u16, Value) {
    let url = format!("{}/protocol/openid-connect/token", issuer());
    let (status, body) = curl(&[
        "-d",
        "grant_type=password",
        "-d",
        &format!("client_id={client}"),
        "-d",
        &format!("username={user}"),
        "-d",
        &format!("password={password}"),
        &url,
    ]);
    (status, serde_json::from_str(&body).unwrap())
}

/// The header and claims of a JWT (read, not verified: the test checks what the provider issues).
fn parts(jwt: &str) -> (Value, Value) {
    let decode = |s: &str| -> Value {
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
    };
    let mut it = jwt.split('.');
    (decode(it.next().unwrap()), decode(it.next().unwrap()))
}

#[test]
fn the_provider_publishes_its_keys_and_issues_tokens_for_commons_with_organisation_and_roles() {
    let (status, body) = curl(&[&format!("{}/.well-known/openid-configuration", issuer())]);
    assert_eq!(status, 200, "{body}");
    let discovery: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(discovery["issuer"], issuer());
    let (status, body) = curl(&[discovery["jwks_uri"].as_str().unwrap()]);
    assert_eq!(status, 200, "{body}");
    let jwks: Value = serde_json::from_str(&body).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "RS256" && k["use"] == "sig")
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(!kids.is_empty(), "an RS256 signing key: {jwks}");

    let (status, t) = token("commons-e2e", "nora", "nora-password");
    assert_eq!(status, 200, "{t}");
    let (header, claims) = parts(t["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    assert!(kids.contains(&header["kid"].as_str().unwrap()), "signed with a published key: {header}");
    assert_eq!(claims["iss"], issuer());
    assert_eq!(claims["aud"], "commons-api", "{claims}");
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()), "{claims}");
    assert_eq!(claims["preferred_username"], "nora");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    let groups: Vec<&str> = claims["groups"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(groups, ["/organisations/northshire-county-council", "/roles/requester"], "{claims}");

    // Central finance belongs to no organisation; the platform team is a role of its own.
    let (_, t) = token("commons-e2e", "cara", "cara-password");
    assert_eq!(
        parts(t["access_token"].as_str().unwrap()).1["groups"],
        serde_json::json!(["/roles/finance-central"])
    );

    // No token for a wrong password, and nothing said about whether the user exists.
    let (status, wrong) = token("commons-e2e", "nora", "not-her-password");
    let (status_unknown, unknown) = token("commons-e2e", "nobody", "whatever");
    assert_eq!((status, status_unknown), (401, 401));
    assert_eq!((&wrong["error"], &unknown["error"]), (&"invalid_grant".into(), &"invalid_grant".into()));
    assert_eq!(wrong["error_description"], unknown["error_description"]);

    // Another client of the same provider gets tokens that are not for Commons.
    let (status, other) = token("commons-other", "nora", "nora-password");
    assert_eq!(status, 200, "{other}");
    let (_, claims) = parts(other["access_token"].as_str().unwrap());
    assert!(
        claims.get("aud").is_none_or(
            |a| a != "commons-api" && !a.as_array().is_some_and(|a| a.contains(&"commons-api".into()))
        ),
        "{claims}"
    );
}

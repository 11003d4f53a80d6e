//! The authorisation matrix: every /v1 route, as every role (and as someone with none), against
//! the caller's own organisation and another's, over HTTP with tokens from the real OIDC provider
//! and RBAC in the real control plane. Reads of another organisation's data and writes to it are
//! the failures this looks for (API keys, made with `commons apikey`, are callers like any other): a 404 (or an empty list) where the data is not the caller's, a 403
//! where the role does not allow the action, and for the roles that may act, an answer that shows
//! they got past authorisation (writes are aimed at a request already decided, or carry a body the
//! CRD refuses, so the matrix changes nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;

use commons_e2e::api::{api_key, grant_api_roles, token};
use commons_e2e::kubectl;
use serde_json::{Value, json};

fn call(method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    commons_e2e::api::call(method, path, token, body).unwrap()
}

fn request_body(organisation: &str, justification: &str) -> Value {
    json!({
        "tenancyName": format!("matrix-{}", std::process::id()),
        "justification": justification,
        "tenancy": {
            "organisation": {"id": organisation, "displayName": "Council", "sector": "local-government",
                             "costCentre": "CC-1", "contactEmail": "it@council.example.gov.uk"},
            "owners": [{"kind": "User", "name": "it@council.example.gov.uk"}],
            "namespaces": [{"name": "app"}],
            "quota": {"cpu": "1"}
        }
    })
}

const NORTH: &str = "northshire-county-council";
const SOUTH: &str = "southshire-district-council";

/// Who is asking: user, organisation, and whether they act for every organisation.
struct Caller {
    user: &'static str,
    token: String,
}

#[test]
fn every_route_as_every_role_against_own_and_other_organisations() {
    grant_api_roles().unwrap();
    let mut callers: Vec<Caller> = ["nora", "finn", "sam", "cara", "pat", "olive"]
        .into_iter()
        .map(|user| Caller { user, token: token(user).unwrap() })
        .collect();
    // Northshire's machine clients: a requester's key and a finance system's key.
    for (user, role) in [("key-requester", "requester"), ("key-finance", "finance")] {
        let key = api_key(NORTH, role, "authorisation matrix (e2e)", "e2e").unwrap();
        assert_eq!(call("GET", "/v1/whoami", &key, None).1["credential"], "api-key", "{user}");
        callers.push(Caller { user, token: key });
    }
    let by = |user: &str| callers.iter().find(|c| c.user == user).unwrap().token.clone();

    // A request of each council, decided (denied) so that no write below changes anything.
    let mut decided = BTreeMap::new();
    for (user, organisation) in [("nora", NORTH), ("sam", SOUTH)] {
        let (status, made) = call(
            "POST",
            "/v1/tenancy-requests",
            &by(user),
            Some(&request_body(organisation, "matrix: to be denied at once")),
        );
        assert_eq!(status, 201, "{made}");
        let name = made["name"].as_str().unwrap().to_owned();
        let (status, body) = call(
            "POST",
            &format!("/v1/tenancy-requests/{name}/deny"),
            &by("pat"),
            Some(&json!({"reason": "matrix"})),
        );
        assert_eq!(status, 200, "{body}");
        decided.insert(organisation, name);
    }
    let tenancies = kubectl(&[
        "get",
        "tenancies",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.organisation.id}{\"\\n\"}{end}",
    ])
    .unwrap();
    let tenancy_of = |org: &str| {
        tenancies.lines().find_map(|l| l.strip_suffix(&format!(" {org}"))).map(str::to_owned).unwrap()
    };
    let (north_tenancy, south_tenancy) = (tenancy_of(NORTH), tenancy_of(SOUTH));
    let namespace_of = |tenancy: &str| {
        kubectl(&["get", "namespaces", "-l", &format!("commons.dev/tenancy={tenancy}"), "-o", "name"])
            .unwrap()
            .lines()
            .next()
            .map(|l| l.trim_start_matches("namespace/").to_owned())
            .unwrap()
    };
    // A subscription the CRD refuses (the service's name is missing): 422 once past authorisation
    // and the namespace's organisation, so nothing is made.
    let subscription = |tenancy: &str| {
        json!({"namespace": namespace_of(tenancy), "name": format!("matrix-{}", std::process::id()),
               "service": {"namespace": "westshire-council-apps"}})
    };
    let (north_subscription, south_subscription) =
        (subscription(&north_tenancy), subscription(&south_tenancy));

    // (user, method, path, body, expected status). "own" is Northshire for nora, finn and olive;
    // Southshire is the other organisation for them, and the reverse for sam.
    let reason = json!({"reason": "matrix"});
    let bad_quota = json!({"quota": {"cpu": "lots"}, "justification": "matrix: refused, never made"});
    let invalid_north = request_body(NORTH, "short");
    let invalid_south = request_body(SOUTH, "short");
    let (rn, rs) = (decided[NORTH].clone(), decided[SOUTH].clone());
    let mut cases: Vec<(&str, &str, String, Option<&Value>, u16)> = Vec::new();
    for (user, own_tenancy, other_tenancy, own_req, other_req, acts_for_all) in [
        ("nora", &north_tenancy, &south_tenancy, &rn, &rs, false),
        ("finn", &north_tenancy, &south_tenancy, &rn, &rs, false),
        ("olive", &north_tenancy, &south_tenancy, &rn, &rs, false),
        ("sam", &south_tenancy, &north_tenancy, &rs, &rn, false),
        ("cara", &north_tenancy, &south_tenancy, &rn, &rs, true),
        ("pat", &north_tenancy, &south_tenancy, &rn, &rs, true),
        ("key-requester", &north_tenancy, &south_tenancy, &rn, &rs, false),
        ("key-finance", &north_tenancy, &south_tenancy, &rn, &rs, false),
    ] {
        let role = match user {
            "nora" | "sam" | "key-requester" => "requester",
            "finn" | "key-finance" => "finance",
            "cara" => "finance-central",
            "pat" => "platform-admin",
            _ => "none",
        };
        let reads_tenancies = role != "none";
        let reads_requests = matches!(role, "requester" | "platform-admin");
        let creates = matches!(role, "requester" | "platform-admin");
        let decides = role == "platform-admin";
        let withdraws = matches!(role, "requester" | "platform-admin");
        let browses = matches!(role, "requester" | "platform-admin");
        let other = |allowed: bool| match (allowed, acts_for_all) {
            (false, _) => 403,
            (true, true) => 200,
            (true, false) => 404,
        };
        let (own_body, other_body) =
            if user == "sam" { (&invalid_south, &invalid_north) } else { (&invalid_north, &invalid_south) };
        let (own_subscription, other_subscription) = if user == "sam" {
            (&south_subscription, &north_subscription)
        } else {
            (&north_subscription, &south_subscription)
        };
        cases.extend([
            (user, "GET", "/v1/whoami".to_owned(), None, 200),
            (user, "GET", "/v1/tenancies".to_owned(), None, if reads_tenancies { 200 } else { 403 }),
            (
                user,
                "GET",
                format!("/v1/tenancies/{own_tenancy}"),
                None,
                if reads_tenancies { 200 } else { 403 },
            ),
            (user, "GET", format!("/v1/tenancies/{other_tenancy}"), None, other(reads_tenancies)),
            (user, "GET", "/v1/tenancy-requests".to_owned(), None, if reads_requests { 200 } else { 403 }),
            (
                user,
                "GET",
                format!("/v1/tenancy-requests/{own_req}"),
                None,
                if reads_requests { 200 } else { 403 },
            ),
            (user, "GET", format!("/v1/tenancy-requests/{other_req}"), None, other(reads_requests)),
            // Past authorisation a body the CRD refuses is 422; another organisation's is 403.
            (
                user,
                "POST",
                "/v1/tenancy-requests".to_owned(),
                Some(own_body),
                if creates { 422 } else { 403 },
            ),
            (
                user,
                "POST",
                "/v1/tenancy-requests".to_owned(),
                Some(other_body),
                if creates && acts_for_all { 422 } else { 403 },
            ),
            // Past authorisation a decided request is 409.
            (
                user,
                "POST",
                format!("/v1/tenancy-requests/{own_req}/approve"),
                Some(&reason),
                if decides { 409 } else { 403 },
            ),
            (
                user,
                "POST",
                format!("/v1/tenancy-requests/{other_req}/deny"),
                Some(&reason),
                if decides { 409 } else { 403 },
            ),
            (
                user,
                "DELETE",
                format!("/v1/tenancy-requests/{own_req}"),
                None,
                if withdraws { 409 } else { 403 },
            ),
            (
                user,
                "DELETE",
                format!("/v1/tenancy-requests/{other_req}"),
                None,
                match (withdraws, acts_for_all) {
                    (false, _) => 403,
                    (true, true) => 409,
                    (true, false) => 404,
                },
            ),
            // A quota change the CRD refuses: 422 past authorisation, for a tenancy the caller
            // may see; another organisation's tenancy is not found.
            (
                user,
                "POST",
                format!("/v1/tenancies/{own_tenancy}/quota-requests"),
                Some(&bad_quota),
                if creates { 422 } else { 403 },
            ),
            (
                user,
                "POST",
                format!("/v1/tenancies/{other_tenancy}/quota-requests"),
                Some(&bad_quota),
                match (creates, acts_for_all) {
                    (false, _) => 403,
                    (true, true) => 422,
                    (true, false) => 404,
                },
            ),
            (user, "GET", "/v1/audit".to_owned(), None, if role == "platform-admin" { 200 } else { 403 }),
            // The catalogue is every organisation's published services; subscriptions are the
            // caller's own, and only into one of its own namespaces.
            (user, "GET", "/v1/catalogue".to_owned(), None, if browses { 200 } else { 403 }),
            (user, "GET", "/v1/subscriptions".to_owned(), None, if browses { 200 } else { 403 }),
            (
                user,
                "POST",
                "/v1/subscriptions".to_owned(),
                Some(own_subscription),
                if browses { 422 } else { 403 },
            ),
            (
                user,
                "POST",
                "/v1/subscriptions".to_owned(),
                Some(other_subscription),
                if browses && acts_for_all { 422 } else { 403 },
            ),
        ]);
        let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
        let reads_usage = role != "none";
        for path in [
            format!("/v1/usage?period={month}&by=organisation"),
            format!("/v1/reports/annual?year={}&by=organisation", &month[..4]),
            format!("/v1/reports/savings?period={month}"),
            "/v1/reports/forecast".to_owned(),
        ] {
            cases.push((user, "GET", path, None, if reads_usage { 200 } else { 403 }));
        }
    }

    let mut wrong = Vec::new();
    for (user, method, path, body, want) in &cases {
        let (status, answer) = call(method, path, &by(user), *body);
        if status != *want {
            wrong.push(format!("{user} {method} {path}: {status}, expected {want}: {answer}"));
            continue;
        }
        // What a council may read is its own organisation's and nothing else.
        let own = if *user == "sam" { SOUTH } else { NORTH };

        let all = matches!(*user, "cara" | "pat");
        if status == 200 && !all {
            let orgs: Vec<&str> = match path.as_str() {
                p if p.starts_with("/v1/tenancies")
                    || p.starts_with("/v1/tenancy-requests")
                    || p.starts_with("/v1/subscriptions") =>
                {
                    answer["items"].as_array().map_or_else(
                        || vec![answer["organisation"].as_str().unwrap_or_default()],
                        |items| {
                            items.iter().map(|i| i["organisation"].as_str().unwrap_or_default()).collect()
                        },
                    )
                }
                p if p.starts_with("/v1/usage") => answer["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["group"].as_str().unwrap_or_default())
                    .collect(),
                p if p.starts_with("/v1/reports/annual") => answer["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["group"].as_str().unwrap_or_default())
                    .collect(),
                p if p.starts_with("/v1/reports/forecast") => answer["tenancies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["organisation"].as_str().unwrap_or_default())
                    .collect(),
                // Savings name tenancies: a council sees only services it provides or uses.
                p if p.starts_with("/v1/reports/savings") => answer["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| {
                        let mine =
                            |t: &str| t.starts_with(if own == SOUTH { "southshire" } else { "northshire" });
                        !mine(s["provider"].as_str().unwrap_or_default())
                            && !s["consumers"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .all(|c| mine(c.as_str().unwrap_or_default()))
                    })
                    .map(|_| "a service it neither provides nor uses alone")
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(foreign) = orgs.iter().find(|o| **o != own) {
                wrong.push(format!("{user} {method} {path}: read {foreign}'s data"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    println!("authorisation matrix: {} cases, all as expected", cases.len());
}

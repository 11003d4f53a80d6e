//! The council journey over HTTP, against the real parts: tokens from the OIDC provider, RBAC in
//! the local control plane, the TenancyRequest controller and its auto-approval policy
//! (docs/examples/request-policy.yaml), the Tenancy controller. A council asks for a sandbox and
//! sees it approved at once and Ready, priced before it runs; asks for a production tenancy that a
//! platform admin approves; sees what runs in it in its usage; changes its quota through the same
//! decisions; and cannot see, decide or make requests for another organisation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::{Duration, Instant};

use commons_e2e::api::exchange;
use commons_e2e::kubectl;
use serde_json::{Value, json};

fn grant_api_roles() {
    commons_e2e::api::grant_api_roles().unwrap();
}

fn token(user: &str) -> String {
    commons_e2e::api::token(user).unwrap()
}

/// `method path` with `token` and an optional JSON body: status and JSON answer.
fn call(method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    call_with(method, path, token, body, &[])
}

/// The same, with extra headers.
fn call_with(method: &str, path: &str, token: &str, body: Option<&Value>, headers: &[&str]) -> (u16, Value) {
    let a = exchange(method, path, token, headers, body).unwrap();
    (a.status, a.json())
}

/// A name no earlier run used.
fn unique(prefix: &str) -> String {
    let n =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000;
    format!("{prefix}-{n}")
}

fn request(tenancy: &str, organisation: &str, sandbox_days: Option<i64>, cpu: &str) -> Value {
    let mut spec = json!({
        "organisation": {"id": organisation, "displayName": "Northshire County Council", "sector": "local-government",
                         "costCentre": "NCC-IT-001", "contactEmail": "it@northshire.example.gov.uk"},
        "classification": "official",
        "owners": [{"kind": "User", "name": "nora@northshire.example.gov.uk"}],
        "namespaces": [{"name": "app"}],
        "quota": {"cpu": cpu, "memory": "4Gi", "storage": "10Gi", "loadBalancers": 0},
        "deletionProtection": false,
    });
    if let Some(days) = sandbox_days {
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days);
        spec["expiresAt"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    json!({"tenancyName": tenancy, "tenancy": spec, "justification": "a place to try the new planning service"})
}

fn wait_for_state(name: &str, token: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = call("GET", &format!("/v1/tenancy-requests/{name}"), token, None);
        if status == 200 && body["state"] == state {
            return body;
        }
        assert!(Instant::now() < deadline, "{name} never became {state}: {status} {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The `field` (reason, message) of each Event about the request `name`.
fn events_of(name: &str, field: &str) -> String {
    kubectl(&[
        "get",
        "events",
        "-n",
        "commons-requests",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        &format!("jsonpath={{.items[*].{field}}}"),
    ])
    .unwrap()
}

fn remove(tenancy: &str) {
    let _ = kubectl(&["delete", "tenancy", tenancy, "--wait=false", "--ignore-not-found"]);
}

#[test]
fn a_council_sandbox_is_priced_approved_by_the_policy_and_ready() {
    grant_api_roles();
    let nora = token("nora");
    let tenancy = unique("sandbox");
    let (status, made) = call(
        "POST",
        "/v1/tenancy-requests",
        &nora,
        Some(&request(&tenancy, "northshire-county-council", Some(30), "2")),
    );
    assert_eq!(status, 201, "{made}");
    let name = made["name"].as_str().unwrap().to_owned();
    assert_eq!(made["requester"]["email"], "nora@northshire.example.gov.uk");
    let estimate = &made["estimatedMonthlyCost"];
    assert_eq!(estimate["currency"], "GBP", "{made}");
    let total: f64 = estimate["total"].as_str().unwrap().parse().unwrap();
    assert!(total > 0.0, "the quota is priced: {estimate}");
    assert!(estimate["lines"].as_array().unwrap().iter().any(|l| l["charge"] == "vat"), "{estimate}");
    assert_eq!(made["decision"]["decidedBy"], "policy:council-sandbox", "decided at once: {made}");
    // The answer shows the request as it is when the decision is seen: approved, or already
    // followed to its Tenancy being Ready (a fast controller).
    assert!(made["state"] == "Approved" || made["state"] == "Ready", "{made}");

    let ready = wait_for_state(&name, &nora, "Ready");
    assert_eq!(ready["tenancy"], tenancy.as_str());
    let (status, t) = call("GET", &format!("/v1/tenancies/{tenancy}"), &nora, None);
    assert_eq!((status, t["state"].as_str()), (200, Some("Ready")), "{t}");
    let events = events_of(&name, "reason");
    assert!(events.contains("Approved") && events.contains("Provisioned"), "{events}");
    // Deleted on purpose, the tenancy is not made again from the request.
    remove(&tenancy);
    wait_for_state(&name, &nora, "TenancyDeleted");
    // Past the next resyncs of the request, which must find it deleted again, not missing.
    let resync: u64 = std::env::var("COMMONS_RESYNC_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    std::thread::sleep(Duration::from_secs(2 * resync + 2));
    let exists = kubectl(&["get", "tenancy", &tenancy, "--ignore-not-found", "-o", "name"]).unwrap();
    assert!(exists.trim().is_empty(), "made again: {exists}");
}

#[test]
fn a_platform_admin_decides_once_and_other_organisations_see_nothing() {
    grant_api_roles();
    let (nora, sam, pat) = (token("nora"), token("sam"), token("pat"));
    let tenancy = unique("planning");
    let (status, made) = call(
        "POST",
        "/v1/tenancy-requests",
        &nora,
        Some(&request(&tenancy, "northshire-county-council", None, "2")),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["state"], "Pending", "not a sandbox: no rule approves it: {made}");
    let name = made["name"].as_str().unwrap().to_owned();
    let path = format!("/v1/tenancy-requests/{name}");

    // Another council: not found, like a request that does not exist; not in its list.
    let (status, _) = call("GET", &path, &sam, None);
    assert_eq!(status, 404);
    let (_, theirs) = call("GET", "/v1/tenancy-requests", &sam, None);
    assert!(
        theirs["items"].as_array().unwrap().iter().all(|r| r["organisation"] != "northshire-county-council"),
        "{theirs}"
    );
    // The requester cannot decide; a reason is required; the admin's decision is final.
    let reason = json!({"reason": "capacity agreed with the council"});
    let (status, body) = call("POST", &format!("{path}/approve"), &nora, Some(&reason));
    assert_eq!(status, 403, "{body}");
    let (status, body) = call("POST", &format!("{path}/approve"), &pat, Some(&json!({})));
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("reason")), "{body}");
    let (status, body) = call("POST", &format!("{path}/approve"), &pat, Some(&reason));
    assert_eq!((status, body["state"].as_str()), (200, Some("Approved")), "{body}");
    assert_eq!(body["decision"]["decidedBy"], "oidc:pat");
    let (status, body) = call("POST", &format!("{path}/deny"), &pat, Some(&reason));
    assert_eq!(status, 409, "decisions are final: {body}");
    let (status, body) = call("DELETE", &path, &nora, None);
    assert_eq!(status, 409, "a decided request is kept: {body}");
    wait_for_state(&name, &nora, "Ready");
    remove(&tenancy);
}

#[test]
fn bad_requests_name_each_field_and_make_nothing() {
    grant_api_roles();
    let (nora, pat) = (token("nora"), token("pat"));
    let mut bad = request("Bad_Name", "northshire-county-council", Some(30), "lots");
    bad["tenancy"]["namespaces"] = json!([]);
    let (status, body) = call("POST", "/v1/tenancy-requests", &nora, Some(&bad));
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for want in ["tenancyName", "tenancy.quota.cpu", "tenancy.namespaces"] {
        assert!(fields.contains(&want), "{want} not named: {body}");
    }
    let odd = unique("odd");
    let (status, body) =
        call("POST", "/v1/tenancy-requests", &nora, Some(&json!({"tenancyName": odd, "colour": "red"})));
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("colour")), "{body}");
    let theirs = unique("theirs");
    let (status, body) = call(
        "POST",
        "/v1/tenancy-requests",
        &nora,
        Some(&request(&theirs, "southshire-district-council", Some(30), "1")),
    );
    assert_eq!(status, 403, "Nora does not act for Southshire: {body}");
    // A platform admin sees every organisation's requests: none of these was made.
    let (_, all) = call("GET", "/v1/tenancy-requests", &pat, None);
    let made: Vec<&Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            ["Bad_Name", odd.as_str(), theirs.as_str()]
                .contains(&r["tenancyName"].as_str().unwrap_or_default())
        })
        .collect();
    assert!(made.is_empty(), "nothing was made: {made:?}");
}

#[test]
fn a_pending_request_can_be_withdrawn_and_a_denied_one_makes_nothing() {
    grant_api_roles();
    let (nora, pat) = (token("nora"), token("pat"));
    let (status, made) = call(
        "POST",
        "/v1/tenancy-requests",
        &nora,
        Some(&request(&unique("withdrawn"), "northshire-county-council", None, "1")),
    );
    assert_eq!(status, 201, "{made}");
    let path = format!("/v1/tenancy-requests/{}", made["name"].as_str().unwrap());
    let (status, _) = call("DELETE", &path, &nora, None);
    assert_eq!(status, 204);
    let (status, _) = call("GET", &path, &nora, None);
    assert_eq!(status, 404);

    let tenancy = unique("denied");
    let (_, made) = call(
        "POST",
        "/v1/tenancy-requests",
        &nora,
        Some(&request(&tenancy, "northshire-county-council", None, "1")),
    );
    let path = format!("/v1/tenancy-requests/{}", made["name"].as_str().unwrap());
    let (status, body) = call(
        "POST",
        &format!("{path}/deny"),
        &pat,
        Some(&json!({"reason": "use the shared planning service instead"})),
    );
    assert_eq!((status, body["state"].as_str()), (200, Some("Denied")), "{body}");
    std::thread::sleep(Duration::from_secs(3));
    let exists = kubectl(&["get", "tenancy", &tenancy, "--ignore-not-found", "-o", "name"]).unwrap();
    assert!(exists.trim().is_empty(), "a denied request makes no tenancy: {exists}");
}

#[test]
fn a_retried_create_makes_one_request_and_every_change_is_in_the_audit_record() {
    grant_api_roles();
    let (nora, pat) = (token("nora"), token("pat"));
    let tenancy = unique("retried");
    let body = request(&tenancy, "northshire-county-council", None, "1");
    let key = format!("Idempotency-Key: {}", unique("key"));
    let (first, made) = call_with("POST", "/v1/tenancy-requests", &nora, Some(&body), &[&key]);
    let (again, replayed) = call_with("POST", "/v1/tenancy-requests", &nora, Some(&body), &[&key]);
    assert_eq!((first, again), (201, 201), "{made} {replayed}");
    assert_eq!(made["name"], replayed["name"], "the retry is answered with the first request");
    let (status, _) = call_with(
        "POST",
        "/v1/tenancy-requests",
        &nora,
        Some(&request(&tenancy, "northshire-county-council", None, "2")),
        &[&key],
    );
    assert_eq!(status, 422, "the key was used for another body");
    let (_, all) = call("GET", "/v1/tenancy-requests", &pat, None);
    let same: Vec<&Value> =
        all["items"].as_array().unwrap().iter().filter(|r| r["tenancyName"] == tenancy.as_str()).collect();
    assert_eq!(same.len(), 1, "one request made: {same:?}");

    let name = made["name"].as_str().unwrap();
    let (status, _) = call("DELETE", &format!("/v1/tenancy-requests/{name}"), &nora, None);
    assert_eq!(status, 204);
    // The platform admin reads the record; a council may not.
    let (status, _) = call("GET", "/v1/audit", &nora, None);
    assert_eq!(status, 403);
    let mut records: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = call("GET", &format!("/v1/audit?after={after}&limit=1000"), &pat, None);
        assert_eq!(status, 200, "{page}");
        records.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let about: Vec<(&str, &str, u64)> = records
        .iter()
        .filter(|r| {
            r["object"].as_str().unwrap_or_default().ends_with(name)
                || r["path"].as_str().unwrap_or_default().ends_with(name)
        })
        .map(|r| (r["method"].as_str().unwrap(), r["actor"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        about,
        [("POST", "oidc:nora", 201), ("DELETE", "oidc:nora", 204)],
        "made once, withdrawn once"
    );
}

#[test]
fn a_claimed_sector_or_extra_rights_are_never_auto_approved() {
    grant_api_roles();
    let nora = token("nora");
    // Northshire is known to the platform as local government: a sandbox claiming the health
    // sector (which would open other network segments) waits for a person, as does one asking to
    // join a segment or for the baseline pod security level.
    let mut claimed = request(&unique("claimed"), "northshire-county-council", Some(30), "1");
    claimed["tenancy"]["organisation"]["sector"] = json!("health");
    // Named otherwise than the platform knows it, though the rule would match: a person looks.
    let mut renamed = request(&unique("renamed"), "northshire-county-council", Some(30), "1");
    renamed["tenancy"]["organisation"]["displayName"] = json!("Northshire County Council (new)");
    let mut segment = request(&unique("segment"), "northshire-county-council", Some(30), "1");
    segment["tenancy"]["networkSegments"] = json!(["psn"]);
    let mut baseline = request(&unique("baseline"), "northshire-county-council", Some(30), "1");
    baseline["tenancy"]["podSecurity"] = json!("baseline");
    for (what, body) in [
        ("a claimed sector", claimed),
        ("another name", renamed),
        ("a segment", segment),
        ("baseline", baseline),
    ] {
        let (status, made) = call("POST", "/v1/tenancy-requests", &nora, Some(&body));
        assert_eq!((status, made["state"].as_str()), (201, Some("Pending")), "{what}: {made}");
        let name = made["name"].as_str().unwrap();
        // Past the controller's first look, still waiting for a person.
        std::thread::sleep(Duration::from_secs(2));
        let (_, again) = call("GET", &format!("/v1/tenancy-requests/{name}"), &nora, None);
        assert_eq!(again["state"], "Pending", "{what}: {again}");
        call("DELETE", &format!("/v1/tenancy-requests/{name}"), &nora, None);
    }
}

/// The tenancy `name` as kubectl sees it: its quota's cpu and memory.
fn quota_of(tenancy: &str) -> (String, String) {
    let out = kubectl(&["get", "tenancy", tenancy, "-o", "jsonpath={.spec.quota.cpu} {.spec.quota.memory}"])
        .unwrap();
    let (cpu, memory) = out.trim().split_once(' ').unwrap_or_default();
    (cpu.to_owned(), memory.to_owned())
}

#[test]
fn a_council_changes_its_quota_through_the_same_decisions() {
    grant_api_roles();
    let (nora, sam, pat) = (token("nora"), token("sam"), token("pat"));
    let tenancy = unique("growing");
    let (status, made) = call(
        "POST",
        "/v1/tenancy-requests",
        &nora,
        Some(&request(&tenancy, "northshire-county-council", Some(30), "2")),
    );
    assert_eq!(status, 201, "{made}");
    wait_for_state(made["name"].as_str().unwrap(), &nora, "Ready");
    let path = format!("/v1/tenancies/{tenancy}/quota-requests");
    let ask =
        |cpu: &str| json!({"quota": {"cpu": cpu}, "justification": "more planning applications this winter"});

    // Refused before anything is made: each field named; another council's tenancy is not found.
    let (status, body) = call("POST", &path, &nora, Some(&ask("lots")));
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("quota.cpu")), "{body}");
    let (status, body) =
        call("POST", &path, &nora, Some(&json!({"quota": {}, "justification": "nothing at all, really"})));
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("quota")), "{body}");
    let (status, body) = call("POST", &path, &nora, Some(&json!({"quota": {"cpu": "3"}})));
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("justification")), "{body}");
    let (status, body) = call("POST", &path, &sam, Some(&ask("3")));
    assert_eq!(status, 404, "Southshire cannot see Northshire's tenancy: {body}");
    let (status, _) = call("POST", "/v1/tenancies/no-such-tenancy/quota-requests", &nora, Some(&ask("3")));
    assert_eq!(status, 404);

    // Within the sandbox rule's ceilings: approved by the policy and applied at once, only the
    // limit asked for changed.
    let (status, small) = call("POST", &path, &nora, Some(&ask("3")));
    assert_eq!(status, 201, "{small}");
    assert_eq!((small["kind"].as_str(), small["quota"]["cpu"].as_str()), (Some("QuotaChange"), Some("3")));
    assert_eq!(small["decision"]["decidedBy"], "policy:council-sandbox", "{small}");
    assert!(small["estimatedMonthlyCost"]["total"].is_string(), "priced: {small}");
    let applied = wait_for_state(small["name"].as_str().unwrap(), &nora, "Applied");
    assert_eq!(applied["tenancy"], tenancy.as_str());
    assert_eq!(quota_of(&tenancy), ("3".to_owned(), "4Gi".to_owned()));

    // Over the ceiling: a platform admin decides; one change at a time per tenancy.
    let (status, big) = call("POST", &path, &nora, Some(&ask("16")));
    assert_eq!((status, big["state"].as_str()), (201, Some("Pending")), "{big}");
    let name = big["name"].as_str().unwrap().to_owned();
    let (status, body) = call("POST", &path, &nora, Some(&ask("12")));
    assert_eq!(status, 409, "one pending change per tenancy: {body}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(quota_of(&tenancy).0, "3", "nothing changes before the decision");
    let (status, body) = call("GET", "/v1/tenancy-requests", &sam, None);
    assert!(
        status == 200 && body["items"].as_array().unwrap().iter().all(|r| r["name"] != name.as_str()),
        "{body}"
    );
    let reason = json!({"reason": "winter peak agreed with the council"});
    let (status, body) = call("POST", &format!("/v1/tenancy-requests/{name}/approve"), &pat, Some(&reason));
    assert_eq!((status, body["state"].as_str()), (200, Some("Approved")), "{body}");
    wait_for_state(&name, &nora, "Applied");
    assert_eq!(quota_of(&tenancy), ("16".to_owned(), "4Gi".to_owned()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, t) = call("GET", &format!("/v1/tenancies/{tenancy}"), &nora, None);
        if t["quota"]["hard"]["requests.cpu"] == "16" {
            break;
        }
        assert!(Instant::now() < deadline, "the tenancy's quota never followed: {t}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let events = events_of(&name, "message");
    assert!(events.contains("cpu 3 → 16"), "{events}");

    // What runs in it is metered and shows in the council's usage over HTTP at once.
    let mut pod = commons_e2e::restricted_pod("planning-worker");
    pod["metadata"]["namespace"] = json!(format!("{tenancy}-app"));
    pod["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "250m", "memory": "128Mi"}});
    let file = std::env::temp_dir().join(format!("{tenancy}-pod.json"));
    std::fs::write(&file, pod.to_string()).unwrap();
    kubectl(&["apply", "-f", file.to_str().unwrap()]).unwrap();
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, usage) = call("GET", &format!("/v1/usage?period={month}&by=tenancy"), &nora, None);
        assert_eq!(status, 200, "{usage}");
        let cpu = usage["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["group"] == tenancy.as_str() && l["charge"] == "cpu");
        if cpu {
            break;
        }
        assert!(Instant::now() < deadline, "the tenancy's pod never showed in its usage: {usage}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = std::fs::remove_file(&file);
    // And in the tenancy's own view: spend so far and the month-end projection of what it holds
    // now (the pod's CPU and memory until the month ends: more than nothing).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, t) = call("GET", &format!("/v1/tenancies/{tenancy}"), &nora, None);
        let spend = &t["spend"];
        let figure = |k: &str| spend[k].as_str().and_then(|v| v.parse::<f64>().ok());
        if spend["period"] == month.as_str()
            && figure("monthToDate").is_some_and(|v| v >= 0.0)
            && figure("projected").is_some_and(|v| v > 0.0)
        {
            assert!(figure("projected") >= figure("monthToDate"), "{t}");
            assert_eq!(spend["currency"], "GBP", "{t}");
            break;
        }
        assert!(Instant::now() < deadline, "the tenancy's spend never showed: {t}");
        std::thread::sleep(Duration::from_secs(1));
    }

    // Two changes asked at the same moment (as two replicas, or a double click, would): the
    // apiserver makes one (numbered after the two before it), the other is 409, nothing else.
    let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let both: Vec<_> = ["20", "24"]
            .into_iter()
            .map(|cpu| {
                let (path, nora, body) = (&path, &nora, ask(cpu));
                scope.spawn(move || call("POST", path, nora, Some(&body)))
            })
            .collect();
        both.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{answers:?}");
    let (_, made) = answers.iter().find(|(s, _)| *s == 201).unwrap();
    let third = made["name"].as_str().unwrap();
    assert_eq!(third, format!("{tenancy}-quota-3"), "{made}");
    let (status, body) = call("DELETE", &format!("/v1/tenancy-requests/{third}"), &nora, None);
    assert!(status == 200 || status == 204, "withdrawn: {status} {body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while call("GET", &format!("/v1/tenancy-requests/{third}"), &nora, None).0 != 404 {
        assert!(Instant::now() < deadline, "{third} still shown after its withdrawal");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A denied change changes nothing.
    let (_, denied) = call("POST", &path, &nora, Some(&ask("64")));
    let name = denied["name"].as_str().unwrap();
    let (status, body) = call(
        "POST",
        &format!("/v1/tenancy-requests/{name}/deny"),
        &pat,
        Some(&json!({"reason": "use the shared planning service instead"})),
    );
    assert_eq!((status, body["state"].as_str()), (200, Some("Denied")), "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(quota_of(&tenancy).0, "16");
    remove(&tenancy);
}

#[test]
fn a_dry_run_checks_and_prices_a_request_and_makes_nothing() {
    grant_api_roles();
    let nora = token("nora");
    let tenancy = unique("dry");
    let body = request(&tenancy, "northshire-county-council", Some(30), "2");
    let (status, checked) = call("POST", "/v1/tenancy-requests?dryRun=All", &nora, Some(&body));
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["state"], "Pending", "nothing decided: {checked}");
    assert!(checked["decision"].is_null(), "{checked}");
    assert!(checked["estimatedMonthlyCost"]["total"].as_str().is_some(), "priced: {checked}");
    // The CRD's own validation, through the dry run.
    let mut bad = request("Bad_Name", "northshire-county-council", Some(30), "lots");
    bad["tenancy"]["namespaces"] = json!([]);
    let (status, refused) = call("POST", "/v1/tenancy-requests?dryRun=All", &nora, Some(&bad));
    assert_eq!(status, 422, "{refused}");
    let fields: Vec<&str> =
        refused["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert!(fields.contains(&"tenancy.quota.cpu") && fields.contains(&"tenancyName"), "{refused}");
    // Another organisation's: refused as a real one would be.
    let (status, _) = call(
        "POST",
        "/v1/tenancy-requests?dryRun=All",
        &nora,
        Some(&request(&tenancy, "southshire-district-council", Some(30), "2")),
    );
    assert_eq!(status, 403);
    let (status, refused) = call("POST", "/v1/tenancy-requests?dryRun=Some", &nora, Some(&body));
    assert_eq!((status, refused["errors"][0]["field"].as_str()), (422, Some("dryRun")), "{refused}");
    // Other tests make requests meanwhile: none of them is for this tenancy.
    let asked =
        kubectl(&["get", "tenancyrequests", "-n", "commons-requests", "-o", "jsonpath={..spec.tenancyName}"])
            .unwrap();
    assert!(!asked.split_whitespace().any(|t| t == tenancy), "a dry run makes no request: {asked}");
    assert!(kubectl(&["get", "tenancy", &tenancy]).is_err(), "nor a tenancy");
}

//! The finance journey over HTTP, against the running operator's ledger: a finance user's token
//! from the OIDC provider and an API key for a finance system; the month so far as JSON, CSV and
//! FOCUS, only the caller's organisation unless RBAC grants every organisation; a closed month the
//! same bytes on every call, with a strong ETag.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use commons_e2e::api::{exchange, grant_api_roles, ledger};
use commons_e2e::commons;
use serde_json::Value;

fn token(user: &str) -> String {
    commons_e2e::api::token(user).unwrap()
}

/// GET `path` with `credential` and extra headers: status, headers (lower case), body.
fn get(path: &str, credential: &str, headers: &[&str]) -> (u16, String, String) {
    let a = exchange("GET", path, credential, headers, None).unwrap();
    (a.status, a.headers, a.body)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::trim)
}

fn this_month() -> String {
    jiff::Timestamp::now().strftime("%Y-%m").to_string()
}

fn decimal(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("{s:?} is not a decimal"))
}

#[test]
fn finance_sees_its_own_organisation_in_json_csv_and_focus_with_one_total() {
    grant_api_roles().unwrap();
    let finn = token("finn");
    let month = this_month();
    let path = format!("/v1/usage?period={month}&by=organisation");
    let (status, head, body) = get(&path, &finn, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(header(&head, "content-type").is_some_and(|c| c.starts_with("application/json")), "{head}");
    assert!(
        header(&head, "cache-control").is_some_and(|c| c.contains("no-store")),
        "an open month changes: {head}"
    );
    let report: Value = serde_json::from_str(&body).unwrap();
    let groups: Vec<&str> =
        report["lines"].as_array().unwrap().iter().map(|l| l["group"].as_str().unwrap()).collect();
    assert!(!groups.is_empty(), "the example tenancies have run since the meter started: {report}");
    assert!(groups.iter().all(|g| *g == "northshire-county-council"), "only Northshire: {groups:?}");
    let total = decimal(report["total"].as_str().unwrap());
    let summed: f64 =
        report["lines"].as_array().unwrap().iter().map(|l| decimal(l["amount"].as_str().unwrap())).sum();
    assert!((total - summed).abs() < 1e-9, "{total} vs {summed}");

    let (status, head, csv) = get(&path, &finn, &["Accept: text/csv"]);
    assert_eq!(status, 200);
    assert!(header(&head, "content-type").is_some_and(|c| c.starts_with("text/csv")), "{head}");
    assert!(csv.starts_with("group,organisation_name,charge,"), "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.starts_with("northshire-county-council,")), "{csv}");

    // An open month grows between two calls; read as of the instant the first answer ended, the
    // FOCUS rows add up to its total exactly.
    let until = report["until"].as_str().unwrap();
    let as_of = until.replace(':', "%3A");
    let (status, _, focus) = get(
        &format!("/v1/usage?period={month}&asOf={as_of}"),
        &finn,
        &["Accept: application/vnd.finops.focus+csv"],
    );
    assert_eq!(status, 200, "{focus}");
    let mut rows = focus.lines();
    let columns: Vec<&str> = rows.next().unwrap().split(',').collect();
    let billed = columns.iter().position(|c| *c == "BilledCost").unwrap();
    let account = columns.iter().position(|c| *c == "BillingAccountId").unwrap();
    let mut focus_total = 0.0;
    for row in rows {
        // Descriptions may hold quoted commas; the first columns never do.
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[account], "northshire-county-council", "{row}");
        focus_total += decimal(cells[billed]);
    }
    assert!(
        (focus_total - total).abs() < 1e-6,
        "FOCUS {focus_total} against the report's {total} to {until}"
    );
    let (status, _, again) = get(&format!("{path}&asOf={as_of}"), &finn, &[]);
    assert_eq!(status, 200, "{again}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        (again["until"].as_str(), &again["total"]),
        (Some(until), &report["total"]),
        "the same figures again"
    );
    let (status, _, body) = get(&format!("{path}&asOf=2999-01-01T00%3A00%3A00Z"), &finn, &[]);
    assert!(status == 422 && body.contains("asOf") && body.contains("in the future"), "{status} {body}");
    let (status, _, body) = get(&format!("{path}&asOf=2000-01-01T00%3A00%3A00Z"), &finn, &[]);
    assert!(status == 422 && body.contains("asOf") && body.contains("began"), "{status} {body}");

    let (status, _, _) = get(&path, &finn, &["Accept: image/png"]);
    assert_eq!(status, 406);
}

#[test]
fn central_finance_sees_every_organisation_and_the_platforms_unallocated_capacity() {
    grant_api_roles().unwrap();
    let cara = token("cara");
    let (status, _, body) =
        get(&format!("/v1/usage?period={}&by=organisation&limit=2", this_month()), &cara, &[]);
    assert_eq!(status, 200, "{body}");
    let mut report: Value = serde_json::from_str(&body).unwrap();
    let mut groups: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(report["lines"].as_array().unwrap().len() <= 2);
        groups.extend(
            report["lines"].as_array().unwrap().iter().map(|l| l["group"].as_str().unwrap().to_owned()),
        );
        let Some(next) = report["next"].as_str() else { break };
        let (status, _, body) = get(
            &format!("/v1/usage?period={}&by=organisation&limit=2&cursor={next}", this_month()),
            &cara,
            &[],
        );
        assert_eq!(status, 200, "{body}");
        report = serde_json::from_str(&body).unwrap();
    }
    groups.dedup();
    assert!(pages > 1, "paginated");
    assert!(groups.len() >= 3, "every organisation: {groups:?}");
    assert!(groups.iter().any(|g| g == "(unallocated capacity)"), "{groups:?}");
}

#[test]
fn every_grouping_over_http_adds_up_to_the_same_total() {
    grant_api_roles().unwrap();
    let cara = token("cara");
    let month = this_month();
    let (status, _, body) = get(&format!("/v1/usage?period={month}&by=tenancy"), &cara, &[]);
    assert_eq!(status, 200, "{body}");
    let first: Value = serde_json::from_str(&body).unwrap();
    let as_of = first["until"].as_str().unwrap().replace(':', "%3A");
    let mut totals = Vec::new();
    for by in ["tenancy", "organisation", "sector", "cost-centre", "service"] {
        let (status, _, body) =
            get(&format!("/v1/usage?period={month}&by={by}&asOf={as_of}&limit=1000"), &cara, &[]);
        assert_eq!(status, 200, "by={by}: {body}");
        let report: Value = serde_json::from_str(&body).unwrap();
        assert!(report["next"].is_null(), "one page: {report}");
        let lines = report["lines"].as_array().unwrap();
        let groups: std::collections::BTreeSet<&str> =
            lines.iter().map(|l| l["group"].as_str().unwrap()).collect();
        let summed: f64 = lines.iter().map(|l| decimal(l["amount"].as_str().unwrap())).sum();
        let total = decimal(report["total"].as_str().unwrap());
        assert!((total - summed).abs() < 1e-6, "by={by}: {total} vs lines {summed}");
        match by {
            "sector" => {
                assert!(groups.contains("local-government") && groups.contains("health"), "{groups:?}")
            }
            "organisation" => assert!(groups.contains("northshire-county-council"), "{groups:?}"),
            _ => assert!(groups.len() > 1, "by={by}: {groups:?}"),
        }
        totals.push((by, total));
    }
    let (_, first_total) = totals[0];
    for (by, total) in &totals {
        assert!(
            (total - first_total).abs() < 1e-6,
            "by={by} totals {total}, by=tenancy {first_total}: {totals:?}"
        );
    }
    // An unknown grouping is refused, naming the parameter.
    let (status, _, body) = get(&format!("/v1/usage?period={month}&by=colour"), &cara, &[]);
    assert!(status == 422 || status == 400, "{status} {body}");
    assert!(body.contains("by"), "{body}");
}

#[test]
fn a_closed_month_is_the_same_bytes_every_time_for_a_finance_systems_api_key() {
    grant_api_roles().unwrap();
    let (year, month) = this_month()
        .split_once('-')
        .map(|(y, m)| (y.parse::<i32>().unwrap(), m.parse::<u32>().unwrap()))
        .unwrap();
    let previous = if month == 1 { format!("{}-12", year - 1) } else { format!("{year}-{:02}", month - 1) };
    // Closed by the operator itself after --close-after-days, or now.
    if let Err(e) = commons(&["ledger", "close", &previous, "--ledger", &ledger()]) {
        assert!(e.to_string().contains("closed already"), "{e}");
    }
    let made = commons(&[
        "apikey",
        "create",
        "--organisation",
        "northshire-county-council",
        "--role",
        "finance",
        "--expires",
        "1h",
        "--description",
        "nightly FOCUS (e2e)",
        "--ledger",
        &ledger(),
    ])
    .unwrap();
    let key = made.lines().next().unwrap().trim().to_owned();
    let path = format!("/v1/usage?period={previous}");
    // A closed month's figures are final and whole: an instant within it is refused, naming asOf.
    let (status, _, body) = get(&format!("{path}&asOf={previous}-15T00%3A00%3A00Z"), &key, &[]);
    assert!(status == 422 && body.contains("asOf") && body.contains("is closed"), "{status} {body}");
    for accept in ["Accept: application/json", "Accept: text/csv", "Accept: application/vnd.finops.focus+csv"]
    {
        let (status, head, first) = get(&path, &key, &[accept]);
        assert_eq!(status, 200, "{accept}: {first}");
        let (_, head_again, again) = get(&path, &key, &[accept]);
        assert_eq!(first, again, "{accept}: a closed month is the same bytes");
        let tag = header(&head, "etag").unwrap_or_else(|| panic!("{accept}: no ETag: {head}"));
        assert!(!tag.starts_with("w/"), "a strong ETag: {tag}");
        assert_eq!(Some(tag), header(&head_again, "etag"));
        let (status, _, body) = get(&path, &key, &[accept, &format!("If-None-Match: {tag}")]);
        assert_eq!((status, body.as_str()), (304, ""), "{accept}");
    }
    let id = key.strip_prefix("cmk_").unwrap().split('_').next().unwrap().to_owned();
    commons(&["apikey", "revoke", &id, "--ledger", &ledger()]).unwrap();
}

#[test]
fn finance_pulls_the_annual_savings_and_forecast_reports_for_its_own_organisation() {
    grant_api_roles().unwrap();
    let (finn, cara, sam) = (token("finn"), token("cara"), token("sam"));
    let year = &this_month()[..4];
    let annual = format!("/v1/reports/annual?year={year}&by=organisation");
    let rows = |body: &str| -> Vec<String> {
        let a: Value = serde_json::from_str(body).unwrap();
        a["rows"].as_array().unwrap().iter().map(|r| r["group"].as_str().unwrap().to_owned()).collect()
    };
    let (status, _, own) = get(&annual, &finn, &[]);
    assert_eq!(status, 200, "{own}");
    let (status, _, all) = get(&annual, &cara, &[]);
    assert_eq!(status, 200, "{all}");
    assert_eq!(rows(&own), ["northshire-county-council"], "only Northshire's: {own}");
    assert!(rows(&all).len() >= 3 && rows(&all).contains(&"northshire-county-council".to_owned()), "{all}");
    // Northshire provides payroll: it sees every organisation that shares it.
    let shared: Value = serde_json::from_str(&own).unwrap();
    assert!(
        shared["shared"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["service"] == "northshire-council-revenues/payroll")
    );
    let (status, head, csv) = get(&annual, &finn, &["Accept: text/csv"]);
    assert_eq!(status, 200);
    assert!(header(&head, "content-type").is_some_and(|c| c.starts_with("text/csv")), "{head}");
    assert!(
        csv.starts_with("group,") && csv.lines().nth(1).unwrap().starts_with("northshire-county-council,"),
        "{csv}"
    );
    let (status, head, svg) = get(&annual, &finn, &["Accept: image/svg+xml"]);
    assert_eq!((status, header(&head, "content-type")), (200, Some("image/svg+xml")));
    assert!(svg.contains("<svg") && svg.contains("northshire-county-council"), "a chart of its spend");

    // Savings: the provider sees its service whole; a consumer sees it with no other consumer.
    let savings = format!("/v1/reports/savings?period={}", this_month());
    let services = |token: &str| -> Vec<Value> {
        let (status, _, body) = get(&savings, token, &[]);
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["services"].as_array().unwrap().clone()
    };
    let payroll =
        |list: &[Value]| list.iter().find(|s| s["service"] == "northshire-council-revenues/payroll").cloned();
    let provided = payroll(&services(&finn)).expect("Northshire provides payroll");
    let mut consumers: Vec<&str> =
        provided["consumers"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    consumers.sort_unstable();
    assert_eq!(consumers, ["southshire-council", "westshire-council"], "{provided}");
    // On a fresh machine the examples have been metered for moments only: what sharing saved is
    // still under a penny. Three parties' copies cost three times the one shared, so a saving
    // shows within minutes of metering (payroll costs about 2p an hour).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(480);
    let used = loop {
        let used = payroll(&services(&sam)).expect("Southshire shares payroll");
        assert_eq!(
            used["consumers"],
            serde_json::json!(["southshire-council"]),
            "no other consumer named: {used}"
        );
        let figure = |name: &str| decimal(used[name].as_str().unwrap());
        assert!(
            (figure("saved") - (figure("eachAlone") - figure("cost"))).abs() < 1e-9
                && figure("eachAlone") >= figure("cost"),
            "saved is what copies of their own would have cost less what the shared one did: {used}"
        );
        if figure("saved") > 0.0 {
            break used;
        }
        assert!(std::time::Instant::now() < deadline, "sharing never showed a saving: {used}");
        std::thread::sleep(std::time::Duration::from_secs(10));
    };
    println!("sharing payroll saved Southshire's view {}", used["saved"]);

    // The forecast: each of its tenancies this month and next, and totals that add up.
    let (status, _, body) = get("/v1/reports/forecast", &finn, &[]);
    assert_eq!(status, 200, "{body}");
    let f: Value = serde_json::from_str(&body).unwrap();
    let tenancies = f["tenancies"].as_array().unwrap();
    assert!(
        !tenancies.is_empty() && tenancies.iter().all(|t| t["organisation"] == "northshire-county-council"),
        "{f}"
    );
    let next: f64 = tenancies.iter().filter_map(|t| t["nextMonth"].as_str()).map(decimal).sum();
    assert!(next > 0.0, "the quota is priced: {f}");
    assert!((decimal(f["totals"]["nextMonth"].as_str().unwrap()) - next).abs() < 1e-9, "{f}");
    let (status, _, _) = get("/v1/reports/forecast", &token("olive"), &[]);
    assert_eq!(status, 403, "no role, no reports");
}

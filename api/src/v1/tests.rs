//! The `/v1` routes over HTTP in memory: API keys for identities, an RBAC stand-in that grants by
//! group, tenancies in a store.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use commons_crds::{Tenancy, TenancyRequest};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use tower::ServiceExt;

use super::*;
use crate::auth::apikey::{self, KeyStore, StoredKey};
use crate::auth::{Authenticator, Identity};

#[derive(Debug, Default)]
struct Keys(HashMap<String, StoredKey>);

impl KeyStore for Keys {
    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredKey>, String>> {
        let found = self.0.get(id).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// Grants (group, verb, resource).
#[derive(Debug, Default)]
struct Grants(BTreeSet<(String, &'static str, &'static str)>);

impl Authorizer for Grants {
    fn allowed<'a>(&'a self, who: &'a Identity, a: Action) -> BoxFuture<'a, Result<bool, String>> {
        let ok = who.groups.iter().any(|g| self.0.contains(&(g.clone(), a.verb, a.resource)));
        Box::pin(async move {
            // Deciding a withdrawal is slow in this world: long enough for a client to go away.
            if a.verb == "delete" {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            Ok(ok)
        })
    }
}

#[derive(Debug)]
struct NoSpend;

impl SpendSource for NoSpend {
    fn of(&self, tenancy: &str) -> Option<Spend> {
        (tenancy == "north-apps").then(|| Spend {
            period: "2026-12".into(),
            month_to_date: "12.34".into(),
            projected: "99.00".into(),
            currency: "GBP".into(),
        })
    }
}

/// A key's fingerprint and answer.
type KeyEntry = (String, Option<record::StoredAnswer>);

/// Calls kept in memory.
#[derive(Debug, Default)]
struct Calls {
    audit: std::sync::Mutex<Vec<record::AuditRecord>>,
    keys: std::sync::Mutex<HashMap<(String, String), KeyEntry>>,
}

impl record::CallStore for Calls {
    fn audit(&self, mut r: record::AuditRecord) -> BoxFuture<'_, Result<(), String>> {
        let mut all = self.audit.lock().unwrap();
        r.id = all.len() as i64 + 1;
        all.push(r);
        Box::pin(async { Ok(()) })
    }
    fn audit_since(&self, after: i64, limit: i64) -> BoxFuture<'_, Result<Vec<record::AuditRecord>, String>> {
        let found: Vec<_> = self
            .audit
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.id > after)
            .take(limit as usize)
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
    fn begin(
        &self,
        actor: &str,
        key: &str,
        print: &str,
        _: i64,
    ) -> BoxFuture<'_, Result<record::KeyState, String>> {
        let mut keys = self.keys.lock().unwrap();
        let state = match keys.get(&(actor.to_owned(), key.to_owned())) {
            None => {
                keys.insert((actor.to_owned(), key.to_owned()), (print.to_owned(), None));
                record::KeyState::New
            }
            Some((p, _)) if p != print => record::KeyState::Mismatch,
            Some((_, None)) => record::KeyState::Running,
            Some((_, Some(a))) => record::KeyState::Answered(a.clone()),
        };
        Box::pin(async move { Ok(state) })
    }
    fn answer(&self, actor: &str, key: &str, a: record::StoredAnswer) -> BoxFuture<'_, Result<(), String>> {
        if let Some(entry) = self.keys.lock().unwrap().get_mut(&(actor.to_owned(), key.to_owned())) {
            entry.1 = Some(a);
        }
        Box::pin(async { Ok(()) })
    }
    fn release(&self, actor: &str, key: &str) -> BoxFuture<'_, Result<(), String>> {
        self.keys.lock().unwrap().remove(&(actor.to_owned(), key.to_owned()));
        Box::pin(async { Ok(()) })
    }
}

/// One published service, and one subscription of each council.
#[derive(Debug)]
struct Shelf;

impl catalogue::CatalogueSource for Shelf {
    fn entries(&self) -> Vec<catalogue::CatalogueEntry> {
        vec![catalogue::CatalogueEntry {
            namespace: "north-apps-web".into(),
            name: "payroll".into(),
            title: "Payroll".into(),
            description: "Pays council staff".into(),
            category: Some("finance".into()),
            provider: Some("north-apps".into()),
            organisation: Some("North".into()),
            sector: Some("local-government".into()),
            classification: "official".into(),
            ports: vec![],
            ready: true,
            consumers: 1,
            instances: 0,
            organisations: 1,
        }]
    }
    fn subscriptions(&self) -> Vec<catalogue::SubscriptionView> {
        ["north", "south"]
            .into_iter()
            .map(|org| catalogue::SubscriptionView {
                namespace: format!("{org}-apps-web"),
                name: "payroll".into(),
                tenancy: format!("{org}-apps"),
                organisation: org.into(),
                service: "north-apps-web/payroll".into(),
                mode: "shared".into(),
                phase: Some("Active".into()),
                reason: None,
                message: None,
                endpoint: None,
            })
            .collect()
    }
    fn organisation_of(&self, namespace: &str) -> Option<String> {
        namespace.split('-').next().filter(|o| ["north", "south"].contains(o)).map(str::to_owned)
    }
}

#[derive(Debug)]
struct NoUsage;

impl usage::UsageSource for NoUsage {
    fn usage(&self, q: usage::UsageQuery) -> BoxFuture<'_, Result<usage::UsageDocument, usage::UsageError>> {
        // Says whose lines it was asked for, so the tests see the scope the route passed.
        let report = serde_json::json!({
            "period": q.period,
            "lines": q.organisations.clone().unwrap_or_else(|| vec!["*".into()]),
            "asOf": q.as_of.map(|at| at.to_string()),
        });
        Box::pin(async move { Ok(usage::UsageDocument::Json { closed: true, report }) })
    }
}

impl reports::ReportSource for NoUsage {
    fn report(
        &self,
        q: reports::ReportQuery,
    ) -> BoxFuture<'_, Result<reports::ReportDocument, usage::UsageError>> {
        // Says whose figures it was asked for, so the tests see the scope the route passed.
        let body = serde_json::to_vec(&q.organisations.unwrap_or_else(|| vec!["*".into()])).unwrap();
        Box::pin(async move { Ok(reports::ReportDocument { closed: false, body }) })
    }
}

#[derive(Debug)]
struct NoForecast;

impl Forecaster for NoForecast {
    fn monthly(&self, _: &commons_crds::tenancy::TenancyQuota) -> BoxFuture<'_, Result<Estimate, String>> {
        Box::pin(async { Err("no rate cards".to_owned()) })
    }
}

fn tenancy(name: &str, organisation: &str) -> Tenancy {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": name},
        "spec": {
            "organisation": {"id": organisation, "displayName": "Council", "sector": "local-government",
                             "costCentre": "CC1", "contactEmail": "a@b.example"},
            "owners": [{"kind": "User", "name": "a@b.example"}],
            "namespaces": [{"name": "web"}]
        },
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                                   "lastTransitionTime": "2026-12-01T00:00:00Z"}],
                   "quota": {"hard": {"cpu": "4"}, "used": {"cpu": "1"}}}
    }))
    .unwrap()
}

struct World {
    app: axum::Router,
    keys: HashMap<&'static str, String>,
    v1: Arc<V1>,
}

fn world() -> World {
    world_limited(1000)
}

fn world_limited(burst: u32) -> World {
    let mut stored = Keys::default();
    let mut keys = HashMap::new();
    for (who, organisation, role) in [
        ("north-requester", "north", "requester"),
        ("south-requester", "south", "requester"),
        ("central", "north", "finance-central"),
        ("nobody", "north", "finance"),
    ] {
        let new = apikey::generate().unwrap();
        stored.0.insert(
            new.id.clone(),
            StoredKey {
                id: new.id.clone(),
                hash: new.hash.clone(),
                organisation: organisation.into(),
                role: role.into(),
                description: String::new(),
                created_by: "test".into(),
                created_at_ms: 0,
                expires_at_ms: i64::MAX,
                revoked_at_ms: None,
            },
        );
        keys.insert(who, new.key);
    }
    let mut grants = Grants::default();
    for verb in ["get", "list"] {
        grants.0.insert(("commons:apikey:requester".into(), verb, "tenancies"));
        grants.0.insert(("commons:apikey:finance-central".into(), verb, "tenancies"));
    }
    grants.0.insert(("commons:apikey:finance-central".into(), "list", "organisations"));
    grants.0.insert(("commons:apikey:requester".into(), "get", "usage"));
    grants.0.insert(("commons:apikey:finance-central".into(), "get", "usage"));
    grants.0.insert(("commons:apikey:finance-central".into(), "list", "audit"));
    for (verb, resource) in
        [("list", "hostedservices"), ("list", "subscriptions"), ("create", "subscriptions")]
    {
        grants.0.insert(("commons:apikey:requester".into(), verb, resource));
    }
    let mut writer: Writer<Tenancy> = Writer::default();
    let store = writer.as_reader();
    writer.apply_watcher_event(&watcher::Event::Init);
    for t in [tenancy("north-apps", "north"), tenancy("south-apps", "south")] {
        writer.apply_watcher_event(&watcher::Event::InitApply(t));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let registry = prometheus::Registry::new();
    let v1 = V1 {
        auth: Authenticator { oidc: None, keys: Some(Arc::new(stored)) },
        authz: Arc::new(grants),
        tenancies: store,
        spend: Arc::new(NoSpend),
        auth_failures: V1::auth_failures(&registry).unwrap(),
        requests: Writer::<TenancyRequest>::default().as_reader(),
        requests_namespace: "commons-requests".into(),
        forecaster: Arc::new(NoForecast),
        policy: Arc::new(|_| super::PolicyView::default()),
        usage: Arc::new(NoUsage),
        reports: Arc::new(NoUsage),
        calls: Arc::new(Calls::default()),
        catalogue: Arc::new(Shelf),
        limits: limits::RateLimiter::new(1, burst),
        auth_limits: limits::RateLimiter::new(limits::FAILED_PER_SECOND, limits::FAILED_BURST),
        deadline: std::time::Duration::from_secs(5),
        audit_failures: V1::audit_failures(&registry).unwrap(),
        client: None,
    };
    // The whole router the process serves (the v1 routes inside the layers every answer passes).
    let (_, readiness) = tokio::sync::watch::channel(crate::health::Readiness::default());
    let v1 = Arc::new(v1);
    let state = crate::AppState { readiness, registry, v1: Some(v1.clone()), portal: None };
    World { app: crate::router(state), keys, v1 }
}

async fn call(app: &axum::Router, key: Option<&str>, path: &str) -> (StatusCode, serde_json::Value) {
    let mut request = Request::get(path);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

fn names(list: &serde_json::Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn each_organisation_sees_its_own_tenancies_and_central_scope_sees_all() {
    let w = world();
    let (status, list) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/tenancies").await;
    assert_eq!((status, names(&list)), (StatusCode::OK, vec!["north-apps"]));
    assert_eq!(list["items"][0]["spend"]["monthToDate"], "12.34");
    assert_eq!(list["items"][0]["quota"]["used"]["cpu"], "1");
    assert_eq!(list["items"][0]["state"], "Ready");
    let (_, list) = call(&w.app, Some(&w.keys["south-requester"]), "/v1/tenancies").await;
    assert_eq!(names(&list), vec!["south-apps"]);
    let (_, list) = call(&w.app, Some(&w.keys["central"]), "/v1/tenancies").await;
    assert_eq!(names(&list), vec!["north-apps", "south-apps"]);
}

#[tokio::test]
async fn another_organisations_tenancy_is_not_found_like_one_that_does_not_exist() {
    let w = world();
    let (status, own) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/tenancies/north-apps").await;
    assert_eq!((status, own["name"].as_str()), (StatusCode::OK, Some("north-apps")));
    let (other, body_other) =
        call(&w.app, Some(&w.keys["north-requester"]), "/v1/tenancies/south-apps").await;
    let (missing, body_missing) =
        call(&w.app, Some(&w.keys["north-requester"]), "/v1/tenancies/nowhere").await;
    assert_eq!((other, missing), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(body_other["title"], body_missing["title"]);
}

#[tokio::test]
async fn without_the_rbac_grant_it_is_403_and_without_a_credential_401() {
    let w = world();
    let (status, body) = call(&w.app, Some(&w.keys["nobody"]), "/v1/tenancies").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "you may not list tenancies");
    let (status, body) = call(&w.app, None, "/v1/tenancies/north-apps").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["type"], "https://commons.dev/problems/unauthenticated");
    let forged = format!("{}x", &w.keys["central"][..w.keys["central"].len() - 1]);
    let (status, _) = call(&w.app, Some(&forged), "/v1/tenancies").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn whoami_says_who_and_with_what_scope() {
    let w = world();
    let (_, me) = call(&w.app, Some(&w.keys["central"]), "/v1/whoami").await;
    assert_eq!(me["organisations"], serde_json::json!(["north"]));
    assert_eq!(me["allOrganisations"], true);
    assert_eq!(me["credential"], "api-key");
    let (_, me) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/whoami").await;
    assert_eq!(me["allOrganisations"], false);
}

async fn call_with(
    app: &axum::Router,
    key: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> axum::response::Response {
    let mut request = Request::get(path).header("authorization", format!("Bearer {key}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
}

#[tokio::test]
async fn usage_is_scoped_paginated_tagged_and_negotiated() {
    let w = world();
    let (status, own) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/usage?period=2026-11").await;
    assert_eq!((status, own["lines"].clone()), (StatusCode::OK, serde_json::json!(["north"])));
    let (_, all) = call(&w.app, Some(&w.keys["central"]), "/v1/usage?period=2026-11&limit=1").await;
    assert_eq!(all["lines"], serde_json::json!(["*"]));
    assert_eq!(all["next"], serde_json::Value::Null);

    let first = call_with(&w.app, &w.keys["central"], "/v1/usage?period=2026-11", &[]).await;
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again =
        call_with(&w.app, &w.keys["central"], "/v1/usage?period=2026-11", &[("if-none-match", &tag)]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let png =
        call_with(&w.app, &w.keys["central"], "/v1/usage?period=2026-11", &[("accept", "image/png")]).await;
    assert_eq!(png.status(), StatusCode::NOT_ACCEPTABLE);
    let (status, body) = call(&w.app, Some(&w.keys["central"]), "/v1/usage").await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("period"))
    );
    let (status, _) = call(&w.app, Some(&w.keys["nobody"]), "/v1/usage?period=2026-11").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "finance without a usage grant in this world");
}

#[tokio::test]
async fn usage_as_of_an_instant_is_passed_on_to_the_millisecond_and_refused_when_not_one_or_in_the_future() {
    let w = world();
    let key = &w.keys["central"];
    let (status, body) =
        call(&w.app, Some(key), "/v1/usage?period=2026-11&asOf=2026-11-20T10:51:03.123456Z").await;
    assert_eq!((status, body["asOf"].as_str()), (StatusCode::OK, Some("2026-11-20T10:51:03.123Z")));
    let (_, body) = call(&w.app, Some(key), "/v1/usage?period=2026-11").await;
    assert_eq!(body["asOf"], serde_json::Value::Null, "no asOf: up to now");
    let tomorrow = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    for (bad, says) in [
        ("yesterday".to_owned(), "RFC 3339"),
        ("2026-11-20T10:51:03".to_owned(), "RFC 3339"),
        (tomorrow.to_string(), "in the future"),
    ] {
        let uri = format!("/v1/usage?period=2026-11&asOf={}", crate::auth::http::percent(&bad));
        let (status, body) = call(&w.app, Some(key), &uri).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], "asOf", "{bad}: {body}");
        assert!(body["errors"][0]["detail"].as_str().unwrap().contains(says), "{bad}: {body}");
    }
}

#[tokio::test]
async fn reports_are_scoped_negotiated_and_their_parameters_named() {
    let w = world();
    let (status, own) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/reports/annual?year=2026").await;
    assert_eq!((status, own), (StatusCode::OK, serde_json::json!(["north"])));
    let (_, all) = call(&w.app, Some(&w.keys["central"]), "/v1/reports/savings?period=2026-11").await;
    assert_eq!(all, serde_json::json!(["*"]));
    let svg =
        call_with(&w.app, &w.keys["central"], "/v1/reports/annual?year=2026", &[("accept", "image/svg+xml")])
            .await;
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let no_svg = call_with(
        &w.app,
        &w.keys["central"],
        "/v1/reports/savings?period=2026-11",
        &[("accept", "image/svg+xml")],
    )
    .await;
    assert_eq!(no_svg.status(), StatusCode::NOT_ACCEPTABLE);
    for (path, field) in [
        ("/v1/reports/annual", "year"),
        ("/v1/reports/annual?year=99999", "year"),
        ("/v1/reports/savings", "period"),
    ] {
        let (status, body) = call(&w.app, Some(&w.keys["central"]), path).await;
        assert_eq!(
            (status, body["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{path}"
        );
    }
    let (status, _) = call(&w.app, Some(&w.keys["nobody"]), "/v1/reports/forecast").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "finance without a usage grant in this world");
    let (status, body) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/reports/forecast").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["tenancies"].as_array().unwrap();
    assert!(rows.iter().all(|t| t["organisation"] == "north"), "only its own: {body}");
    // Each figure that cannot be given says why, and counts nothing towards the totals.
    assert_eq!(
        (rows[0]["note"].as_str(), body["totals"]["nextMonth"].as_str()),
        (Some("no rate cards"), Some("0"))
    );
}

async fn post(
    app: &axum::Router,
    key: Option<&str>,
    path: &str,
    idempotency: Option<&str>,
    body: &str,
) -> axum::response::Response {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(k) = idempotency {
        request = request.header("idempotency-key", k);
    }
    app.clone().oneshot(request.body(Body::from(body.to_owned())).unwrap()).await.unwrap()
}

/// The audit record as central finance reads it: each record's `field` and status, and the page.
async fn audited(w: &World, field: &str) -> (Vec<(String, u64)>, serde_json::Value) {
    let (status, page) = call(&w.app, Some(&w.keys["central"]), "/v1/audit").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let seen = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[field].as_str().unwrap().to_owned(), r["status"].as_u64().unwrap()))
        .collect();
    (seen, page)
}

#[tokio::test]
async fn a_retried_key_gets_the_first_answer_and_every_change_is_audited() {
    let w = world();
    let key = &w.keys["north-requester"];
    let first = post(&w.app, Some(key), "/v1/tenancy-requests", Some("k-1"), "{}").await;
    assert_eq!(first.status(), StatusCode::FORBIDDEN, "this world grants no create");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let again = post(&w.app, Some(key), "/v1/tenancy-requests", Some("k-1"), "{}").await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let other = post(&w.app, Some(key), "/v1/tenancy-requests", Some("k-1"), "{\"x\":1}").await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY, "a key retries one call only");
    let bad = post(&w.app, Some(key), "/v1/tenancy-requests", Some("has space"), "{}").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let anonymous = post(&w.app, None, "/v1/tenancy-requests", None, "{}").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (seen, page) = audited(&w, "actor").await;
    // The replay changed nothing and is not recorded again; the refusals of a known caller are;
    // an unauthenticated call is counted, not recorded.
    assert_eq!(seen.len(), 3, "{page}");
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), [403, 422, 400]);
    let (status, _) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_change_whose_client_goes_away_is_still_made_to_its_end_and_recorded() {
    let w = world();
    let request = Request::delete("/v1/tenancy-requests/r1")
        .header("authorization", format!("Bearer {}", w.keys["north-requester"]))
        .body(Body::empty())
        .unwrap();
    // The client gives up while the call is being authorised.
    let gone =
        tokio::time::timeout(std::time::Duration::from_millis(50), w.app.clone().oneshot(request)).await;
    assert!(gone.is_err(), "the call was still running when its client went away");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (seen, page) = audited(&w, "method").await;
    assert_eq!(seen, [("DELETE".to_owned(), 403)], "its outcome is recorded: {page}");
}

#[tokio::test]
async fn an_address_whose_calls_keep_failing_to_authenticate_is_refused_before_any_check() {
    let w = world();
    let made_up = format!("cmk_{}_{}", "0".repeat(12), "x".repeat(43));
    let mut statuses = Vec::new();
    for _ in 0..(limits::FAILED_BURST + 2) {
        let (status, _) = call(&w.app, Some(&made_up), "/v1/whoami").await;
        statuses.push(status.as_u16());
    }
    assert!(statuses[..limits::FAILED_BURST as usize].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[limits::FAILED_BURST as usize..], [429, 429], "then refused unchecked");
    // Even a good credential from that address waits: nothing tells it apart before a check.
    let response = call_with(&w.app, &w.keys["central"], "/v1/whoami", &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_served_document_and_the_routes_agree() {
    let w = world();
    let (status, doc) = call(&w.app, None, "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "served without a credential");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc.pointer("/components/securitySchemes/bearer").is_some());
    assert!(
        doc.pointer("/components/schemas/NewTenancyRequest/properties/tenancy/properties/organisation")
            .is_some(),
        "the Tenancy spec's schema is the CRD's"
    );
    // Every reference the document makes resolves within it.
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_owned());
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        assert!(doc.pointer(r.trim_start_matches('#')).is_some(), "{r} does not resolve");
    }
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let uri = path.replace("{name}", "x");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let response = w.app.clone().oneshot(request).await.unwrap();
            // Served (and guarded) by a handler: not 404 or 405.
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            operations += 1;
        }
    }
    assert_eq!(operations, 18, "every /v1 operation is documented: {:?}", paths.keys().collect::<Vec<_>>());
    // A method a route does not serve is 405, whatever headers come with it.
    // It is a problem document like every other error, and says which methods are served.
    let put = Request::put("/v1/whoami").header("idempotency-key", "has space").body(Body::empty()).unwrap();
    let refused = w.app.clone().oneshot(put).await.unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert_eq!(refused.headers()["allow"], "GET, HEAD");
    let doc: serde_json::Value =
        serde_json::from_slice(&refused.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!((doc["status"].as_u64(), doc["instance"].as_str()), (Some(405), Some("/v1/whoami")));
    // A name that is not UTF-8 once decoded: the framework's refusal, as a problem too.
    let (status, doc) = call(&w.app, Some(&w.keys["north-requester"]), "/v1/tenancies/%FF").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!((doc["status"].as_u64(), doc["title"].as_str()), (Some(400), Some("Bad Request")), "{doc}");
    assert!(doc["detail"].as_str().is_some_and(|d| d.contains("UTF-8")), "{doc}");
    // And a path that is not in the document is not served.
    let (status, _) = call(&w.app, None, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_operation_missing_from_the_document_is_never_run() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use utoipa_axum::{router::OpenApiRouter, routes};
    let w = world();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    // A route registered by mistake outside `routes!`: served, it would skip the guard's checks.
    let router = OpenApiRouter::<Arc<V1>>::new().routes(routes!(whoami::whoami)).route(
        "/v1/hidden",
        axum::routing::post(move || {
            flag.store(true, Ordering::SeqCst);
            async { "done" }
        }),
    );
    let (app, _) = guarded(router, w.v1.clone());
    let request = Request::post("/v1/hidden")
        .header("authorization", format!("Bearer {}", w.keys["north-requester"]))
        .body(Body::empty())
        .unwrap();
    let answer = app.clone().oneshot(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    assert!(!ran.load(Ordering::SeqCst), "the undocumented handler ran");
    // The documented route beside it is served as ever.
    assert_eq!(call(&app, Some(&w.keys["north-requester"]), "/v1/whoami").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_client_over_its_rate_is_told_when_to_come_back_and_others_are_not_held_up() {
    let w = world_limited(2);
    for _ in 0..2 {
        assert_eq!(call(&w.app, Some(&w.keys["north-requester"]), "/v1/whoami").await.0, StatusCode::OK);
    }
    let over = call_with(&w.app, &w.keys["north-requester"], "/v1/whoami", &[]).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.headers()["retry-after"], "1");
    assert_eq!(over.headers()["content-type"], "application/problem+json");
    assert_eq!(call(&w.app, Some(&w.keys["south-requester"]), "/v1/whoami").await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_catalogue_is_everyones_and_subscriptions_are_the_organisations_own() {
    let w = world();
    let (status, found) =
        call(&w.app, Some(&w.keys["south-requester"]), "/v1/catalogue?q=pays%20STAFF").await;
    assert_eq!((status, found["items"].as_array().unwrap().len()), (StatusCode::OK, 1), "{found}");
    let (_, none) = call(&w.app, Some(&w.keys["south-requester"]), "/v1/catalogue?category=planning").await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (_, mine) = call(&w.app, Some(&w.keys["south-requester"]), "/v1/subscriptions").await;
    let orgs: Vec<&str> =
        mine["items"].as_array().unwrap().iter().map(|s| s["organisation"].as_str().unwrap()).collect();
    assert_eq!(orgs, ["south"]);
    // Subscribing another council's namespace is refused before anything is written.
    let body = r#"{"namespace": "north-apps-web", "name": "x", "service": {"namespace": "a", "name": "b"}}"#;
    let refused = post(&w.app, Some(&w.keys["south-requester"]), "/v1/subscriptions", None, body).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

//! The applications store over HTTP: `GET /v1/catalogue` lists and searches the published
//! services (published for reuse across government, so every caller allowed `list hostedservices`
//! sees all of it); `GET /v1/subscriptions` shows the caller's organisations' subscriptions and
//! their state; `POST /v1/subscriptions` subscribes one of the caller's tenancies' namespaces to a
//! service, as a `Subscription` the apiserver validates with the CRD's schema.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use commons_crds::Subscription;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Caller, V1, authorise, invalid_field, unavailable};
use crate::authz::Action;
use crate::problem::Problem;

const BROWSE: Action = Action { verb: "list", resource: "hostedservices" };
const LIST: Action = Action { verb: "list", resource: "subscriptions" };
const SUBSCRIBE: Action = Action { verb: "create", resource: "subscriptions" };

/// One published service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueEntry {
    /// The HostedService's namespace.
    pub namespace: String,
    /// The HostedService's name.
    pub name: String,
    /// The listing's title.
    pub title: String,
    /// What it does.
    pub description: String,
    /// Its category, if given.
    pub category: Option<String>,
    /// The providing tenancy.
    pub provider: Option<String>,
    /// The providing organisation's name.
    pub organisation: Option<String>,
    /// The providing organisation's sector.
    pub sector: Option<String>,
    /// The classification of the data it handles.
    pub classification: String,
    /// Its ports, as `name port/protocol`.
    pub ports: Vec<String>,
    /// Whether it is ready now.
    pub ready: bool,
    /// Tenancies using it shared.
    pub consumers: usize,
    /// Instances of it run by other tenancies.
    pub instances: usize,
    /// Distinct organisations using it.
    pub organisations: usize,
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// The consumer's namespace.
    pub namespace: String,
    /// The Subscription's name.
    pub name: String,
    /// The consumer's tenancy.
    pub tenancy: String,
    /// The consumer's organisation id.
    pub organisation: String,
    /// The service: `namespace/name`.
    pub service: String,
    /// `shared` or `instance`.
    pub mode: String,
    /// Pending, Active, Refused or Ended (absent until first decided).
    pub phase: Option<String>,
    /// Why, when not Active.
    pub reason: Option<String>,
    /// A human-readable explanation.
    pub message: Option<String>,
    /// Where the service is reached from the consumer's namespace.
    pub endpoint: Option<String>,
}

/// Where the catalogue and the subscriptions come from (the shared stores, in `commons`).
pub trait CatalogueSource: Send + Sync + std::fmt::Debug {
    /// Every published service.
    fn entries(&self) -> Vec<CatalogueEntry>;
    /// Every subscription, with its consumer's tenancy and organisation.
    fn subscriptions(&self) -> Vec<SubscriptionView>;
    /// The organisation id of the tenancy `namespace` belongs to, if it belongs to one.
    fn organisation_of(&self, namespace: &str) -> Option<String>;
}

/// The catalogue's query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// Words each listing must contain (title, description, category, provider), any case.
    q: Option<String>,
    /// Only this category.
    category: Option<String>,
    /// Only this classification (`official`, `official-sensitive`).
    classification: Option<String>,
}

/// The catalogue's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Catalogue {
    /// Matching listings, by category then title.
    pub items: Vec<CatalogueEntry>,
}

/// The subscriptions' answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    /// By namespace and name.
    pub items: Vec<SubscriptionView>,
}

/// A subscription asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSubscription {
    /// The consumer's namespace (one of the caller's organisation's tenancies').
    #[schema(min_length = 1, max_length = 63)]
    pub namespace: String,
    /// The Subscription's name.
    #[schema(min_length = 1, max_length = 63, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    pub name: String,
    /// The service: its namespace and name.
    #[schema(value_type = Object)]
    pub service: Value,
    /// `shared` (the default) or `instance`.
    #[schema(value_type = Option<String>)]
    pub mode: Option<Value>,
    /// With mode `instance`: how the copy runs.
    #[schema(value_type = Option<Object>)]
    pub instance: Option<Value>,
}

fn matches(e: &CatalogueEntry, search: &Search) -> bool {
    let text = format!(
        "{} {} {} {} {}",
        e.title,
        e.description,
        e.category.as_deref().unwrap_or_default(),
        e.provider.as_deref().unwrap_or_default(),
        e.organisation.as_deref().unwrap_or_default()
    )
    .to_lowercase();
    search.q.as_deref().is_none_or(|q| q.split_whitespace().all(|w| text.contains(&w.to_lowercase())))
        && search.category.as_deref().is_none_or(|c| e.category.as_deref() == Some(c))
        && search.classification.as_deref().is_none_or(|c| e.classification == c)
}

/// `GET /v1/catalogue`.
#[utoipa::path(
    get,
    path = "/v1/catalogue",
    tag = "catalogue",
    params(Search),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The published services that match", body = Catalogue),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs list hostedservices", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad query string", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Authorisation cannot be decided now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn browse(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    search: Result<Query<Search>, QueryRejection>,
    Caller(who): Caller,
) -> Result<Json<Catalogue>, Problem> {
    let path = uri.path();
    authorise(&v1, &who, BROWSE, path).await?;
    let Query(search) = search.map_err(|e| invalid_field("query", &e.body_text(), path))?;
    Ok(Json(Catalogue {
        items: v1.catalogue.entries().into_iter().filter(|e| matches(e, &search)).collect(),
    }))
}

/// `GET /v1/subscriptions`.
#[utoipa::path(
    get,
    path = "/v1/subscriptions",
    tag = "catalogue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's organisations' subscriptions", body = SubscriptionList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs list subscriptions", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Authorisation cannot be decided now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn subscriptions(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Caller(who): Caller,
) -> Result<Json<SubscriptionList>, Problem> {
    let scope = authorise(&v1, &who, LIST, uri.path()).await?;
    let items = v1
        .catalogue
        .subscriptions()
        .into_iter()
        .filter(|s| !s.organisation.is_empty() && scope.covers(&s.organisation))
        .collect();
    Ok(Json(SubscriptionList { items }))
}

/// `POST /v1/subscriptions`.
#[utoipa::path(
    post,
    path = "/v1/subscriptions",
    tag = "catalogue",
    request_body(content = NewSubscription, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries of this call with the same key get its first answer")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made; its state follows the provider's consent", body = SubscriptionView,
         headers(("Location" = String, description = "Where the caller's subscriptions are listed"))),
        (status = 400, description = "The body is not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs create subscriptions, and the namespace in one of the caller's tenancies", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A subscription of that name exists, or the Idempotency-Key's call is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the CRD's schema and rules, each field named", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The cluster cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn subscribe(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Caller(who): Caller,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<SubscriptionView>), Problem> {
    let path = uri.path();
    let scope = authorise(&v1, &who, SUBSCRIBE, path).await?;
    let asked: NewSubscription =
        serde_json::from_slice(&body).map_err(|e| invalid_field("", &e.to_string(), path))?;
    let organisation = v1.catalogue.organisation_of(&asked.namespace);
    if !organisation.as_deref().is_some_and(|o| scope.covers(o)) {
        return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed")
            .with_detail(format!(
                "the namespace {} is not in one of your organisation's tenancies",
                asked.namespace
            ))
            .with_instance(path.to_owned()));
    }
    let mut spec = json!({"service": asked.service});
    if let Some(mode) = asked.mode {
        spec["mode"] = mode;
    }
    if let Some(instance) = asked.instance {
        spec["instance"] = instance;
    }
    let object = json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "Subscription",
        "metadata": {"name": asked.name, "namespace": asked.namespace,
                     "annotations": {"commons.dev/requested-by": who.user}},
        "spec": spec,
    });
    let object: DynamicObject =
        serde_json::from_value(object).map_err(|e| invalid_field("", &e.to_string(), path))?;
    let client =
        v1.client.clone().ok_or_else(|| unavailable("this server does not write to the cluster", path))?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &asked.namespace, &ApiResource::erase::<Subscription>(&()));
    api.create(&PostParams::default(), &object).await.map_err(|e| super::requests::refused(e, path))?;
    let view = SubscriptionView {
        namespace: asked.namespace.clone(),
        name: asked.name.clone(),
        tenancy: String::new(),
        organisation: organisation.unwrap_or_default(),
        service: format!(
            "{}/{}",
            spec["service"]["namespace"].as_str().unwrap_or_default(),
            spec["service"]["name"].as_str().unwrap_or_default()
        ),
        mode: spec.get("mode").and_then(Value::as_str).unwrap_or("shared").to_owned(),
        phase: None,
        reason: None,
        message: None,
        endpoint: None,
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_static("/v1/subscriptions"));
    Ok((StatusCode::CREATED, headers, Json(view)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str, category: &str, classification: &str) -> CatalogueEntry {
        CatalogueEntry {
            namespace: "ns".into(),
            name: "svc".into(),
            title: title.into(),
            description: "Pays the staff of a council".into(),
            category: Some(category.into()),
            provider: Some("northshire-council".into()),
            organisation: Some("Northshire County Council".into()),
            sector: Some("local-government".into()),
            classification: classification.into(),
            ports: vec![],
            ready: true,
            consumers: 0,
            instances: 0,
            organisations: 0,
        }
    }

    #[test]
    fn search_matches_every_word_in_any_case_and_filters_exactly() {
        let payroll = entry("Payroll", "finance", "official");
        let s = |q: Option<&str>, c: Option<&str>, k: Option<&str>| Search {
            q: q.map(str::to_owned),
            category: c.map(str::to_owned),
            classification: k.map(str::to_owned),
        };
        assert!(matches(&payroll, &s(None, None, None)));
        assert!(matches(&payroll, &s(Some("PAYS staff"), None, None)));
        assert!(matches(&payroll, &s(Some("northshire"), Some("finance"), Some("official"))));
        assert!(!matches(&payroll, &s(Some("pays planning"), None, None)));
        assert!(!matches(&payroll, &s(None, Some("fin"), None)));
        assert!(!matches(&payroll, &s(None, None, Some("official-sensitive"))));
    }
}

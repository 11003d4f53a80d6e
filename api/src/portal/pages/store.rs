//! The applications store: search and filter the services public bodies publish for reuse
//! (`GET /v1/catalogue`), see who provides one and at what classification, subscribe one of your
//! tenancies' namespaces to it (`POST /v1/subscriptions`), and see your subscriptions and where
//! each stands (`GET /v1/subscriptions`).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::form::{Field, QuestionPage, with_errors};
use crate::auth::http::percent;
use crate::portal::Served;
use crate::portal::call::call;
use crate::portal::chrome::{Chrome, render};
use crate::portal::session;
use crate::portal::signed::SignedIn;

const SECTION: &str = "/portal/applications";

/// A listing as the API answers it (the fields the pages show).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    namespace: String,
    name: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    organisation: Option<String>,
    #[serde(default)]
    sector: Option<String>,
    classification: String,
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    organisations: usize,
}

impl Listing {
    /// Who provides it.
    pub fn provider(&self) -> String {
        self.organisation.clone().unwrap_or_else(|| self.namespace.clone())
    }
    /// Its classification as marked.
    pub fn marking(&self) -> String {
        self.classification.to_uppercase()
    }
    /// Its sector, as people read it.
    pub fn sector_text(&self) -> String {
        self.sector.clone().unwrap_or_default().replace('-', " ")
    }
    /// Its page.
    pub fn href(&self) -> String {
        format!("{SECTION}/{}/{}", self.namespace, self.name)
    }
}

#[derive(Deserialize)]
struct Catalogue {
    items: Vec<Listing>,
}

/// The search.
#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    classification: String,
    #[serde(default)]
    category: String,
}

#[derive(Template)]
#[template(path = "portal/store.html")]
struct StorePage {
    chrome: Chrome,
    q: String,
    /// `(value, label, checked)`.
    classifications: Vec<(&'static str, &'static str, bool)>,
    /// `(category, selected)`: every category the catalogue has, in order.
    categories: Vec<(String, bool)>,
    listings: Vec<Listing>,
}

fn chrome(signed: &SignedIn) -> Chrome {
    Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION)
}

async fn listings(served: &Served, signed: &SignedIn, search: &Search) -> Result<Vec<Listing>, Response> {
    let mut query = Vec::new();
    if !search.q.trim().is_empty() {
        query.push(format!("q={}", percent(search.q.trim())));
    }
    if matches!(search.classification.as_str(), "official" | "official-sensitive") {
        query.push(format!("classification={}", search.classification));
    }
    if !search.category.trim().is_empty() {
        query.push(format!("category={}", percent(search.category.trim())));
    }
    let path = format!("/v1/catalogue?{}", query.join("&"));
    call(&served.api, &signed.via, http::Method::GET, &path, None, "application/json")
        .await
        .json::<Catalogue>()
        .map(|c| c.items)
        .map_err(|r| super::refused(chrome(signed), &r))
}

/// `GET /portal/applications`.
pub async fn list(State(served): State<Served>, signed: SignedIn, Query(search): Query<Search>) -> Response {
    // The categories to choose from: every one the catalogue has, whatever else is asked.
    let categories = match listings(&served, &signed, &Search::default()).await {
        Ok(all) => categories(&all, search.category.trim()),
        Err(response) => return response,
    };
    match listings(&served, &signed, &search).await {
        Ok(listings) => render(
            StatusCode::OK,
            &StorePage {
                chrome: chrome(&signed),
                classifications: [
                    ("", "Any"),
                    ("official", "OFFICIAL"),
                    ("official-sensitive", "OFFICIAL-SENSITIVE"),
                ]
                .into_iter()
                .map(|(v, l)| (v, l, v == search.classification))
                .collect(),
                q: search.q,
                categories,
                listings,
            },
        ),
        Err(response) => response,
    }
}

/// Each category among `all` once, in order, marked if it is `chosen`.
fn categories(all: &[Listing], chosen: &str) -> Vec<(String, bool)> {
    let names: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|l| l.category.as_deref()).filter(|c| !c.is_empty()).collect();
    names.into_iter().map(|c| (c.to_owned(), c == chosen)).collect()
}

#[derive(Deserialize)]
struct Tenancies {
    items: Vec<TenancyNamespaces>,
}

#[derive(Deserialize)]
struct TenancyNamespaces {
    name: String,
    #[serde(default)]
    namespaces: Vec<String>,
}

/// The subscribe form for `listing`.
fn subscribe_page(
    chrome: Chrome,
    listing: &Listing,
    namespaces: &[(String, String)],
    form: &BTreeMap<String, String>,
) -> QuestionPage {
    let value = |k: &str| form.get(k).cloned().unwrap_or_default();
    let name = if form.contains_key("name") { value("name") } else { listing.name.clone() };
    QuestionPage {
        chrome,
        caption: format!("{} from {}, {}", listing.title, listing.provider(), listing.marking()),
        heading: format!("Subscribe to {}", listing.title),
        action: format!("{}/subscribe", listing.href()),
        back: listing.href(),
        fields: vec![
            Field::radios(
                "namespace",
                "Which of your namespaces will use it?",
                "The service is reached from this namespace; its provider may have to agree first.",
                namespaces.to_vec(),
                &value("namespace"),
            ),
            Field::text(
                "name",
                "Subscription name",
                "Lower-case letters, numbers and hyphens.",
                "govuk-input--width-20",
                &name,
            ),
        ],
        hidden: Vec::new(),
    }
}

#[derive(Template)]
#[template(path = "portal/service.html")]
struct ServicePage {
    chrome: Chrome,
    s: Listing,
}

async fn find(served: &Served, signed: &SignedIn, namespace: &str, name: &str) -> Result<Listing, Response> {
    let all = listings(served, signed, &Search::default()).await?;
    all.into_iter().find(|l| l.namespace == namespace && l.name == name).ok_or_else(|| {
        super::error_for(
            chrome(signed),
            StatusCode::NOT_FOUND,
            "Page not found",
            "No published service has this address.",
        )
    })
}

/// `GET /portal/applications/{namespace}/{name}`.
pub async fn show(
    State(served): State<Served>,
    signed: SignedIn,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match find(&served, &signed, &namespace, &name).await {
        Ok(s) => render(StatusCode::OK, &ServicePage { chrome: chrome(&signed), s }),
        Err(response) => response,
    }
}

async fn own_namespaces(served: &Served, signed: &SignedIn) -> Result<Vec<(String, String)>, Response> {
    let tenancies =
        call(&served.api, &signed.via, http::Method::GET, "/v1/tenancies", None, "application/json")
            .await
            .json::<Tenancies>()
            .map_err(|r| super::refused(chrome(signed), &r))?;
    Ok(tenancies
        .items
        .into_iter()
        .flat_map(|t| t.namespaces.into_iter().map(move |n| (n.clone(), format!("{n} (tenancy {})", t.name))))
        .collect())
}

/// `GET /portal/applications/{namespace}/{name}/subscribe`.
pub async fn ask(
    State(served): State<Served>,
    signed: SignedIn,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let listing = match find(&served, &signed, &namespace, &name).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    match own_namespaces(&served, &signed).await {
        Ok(namespaces) => {
            render(StatusCode::OK, &subscribe_page(chrome(&signed), &listing, &namespaces, &BTreeMap::new()))
        }
        Err(response) => response,
    }
}

/// `POST /portal/applications/{namespace}/{name}/subscribe`.
pub async fn subscribe(
    State(served): State<Served>,
    signed: SignedIn,
    Path((namespace, name)): Path<(String, String)>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !session::csrf_matches(&signed.session, form.get("csrf").map_or("", String::as_str)) {
        return super::forged_form();
    }
    let listing = match find(&served, &signed, &namespace, &name).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    let namespaces = match own_namespaces(&served, &signed).await {
        Ok(n) => n,
        Err(response) => return response,
    };
    let consumer = form.get("namespace").cloned().unwrap_or_default();
    let subscription = form.get("name").map(|n| n.trim().to_owned()).unwrap_or_default();
    let mut errors = Vec::new();
    if consumer.is_empty() {
        errors.push(("namespace".to_owned(), "Select the namespace that will use it".to_owned()));
    }
    if subscription.is_empty() {
        errors.push(("name".to_owned(), "Enter a name for the subscription".to_owned()));
    }
    if errors.is_empty() {
        let body = json!({"namespace": consumer, "name": subscription,
                          "service": {"namespace": listing.namespace, "name": listing.name}});
        let key = format!("portal-subscribe-{}", session::random_token().unwrap_or_default());
        let answer = call(
            &served.api,
            &signed.via,
            http::Method::POST,
            "/v1/subscriptions",
            Some((body, key)),
            "application/json",
        )
        .await;
        match answer.json::<serde_json::Value>() {
            Ok(_) => {
                return Redirect::to(&format!("/portal/subscriptions?made={}", percent(&listing.title)))
                    .into_response();
            }
            Err(refusal) if refusal.status == 422 || refusal.status == 409 => {
                let detail = refusal.errors.first().map_or_else(
                    || refusal.detail.clone().unwrap_or(refusal.title.clone()),
                    |e| e.detail.clone(),
                );
                errors.push(("name".to_owned(), detail));
            }
            Err(refusal) if refusal.status == 403 => {
                errors.push((
                    "namespace".to_owned(),
                    "Select a namespace of one of your organisation's tenancies".to_owned(),
                ));
            }
            Err(refusal) => return super::refused(chrome(&signed), &refusal),
        }
    }
    let mut page = subscribe_page(chrome(&signed), &listing, &namespaces, &form);
    with_errors(&mut page.fields, &errors);
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    namespace: String,
    name: String,
    service: String,
    mode: String,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

impl Subscription {
    fn phase_text(&self) -> String {
        self.phase.clone().unwrap_or_else(|| "Pending".into())
    }
    fn tag(&self) -> &'static str {
        match self.phase.as_deref() {
            Some("Active") => "govuk-tag--green",
            Some("Refused") => "govuk-tag--red",
            Some("Ended") => "govuk-tag--grey",
            _ => "govuk-tag--blue",
        }
    }
}

#[derive(Deserialize)]
struct Subscriptions {
    items: Vec<Subscription>,
}

#[derive(Template)]
#[template(path = "portal/subscriptions.html")]
struct SubscriptionsPage {
    chrome: Chrome,
    items: Vec<Subscription>,
    /// Just subscribed here: the success banner's words.
    made: Option<String>,
}

/// `?made=<service title>` after subscribing.
#[derive(Debug, Default, Deserialize)]
pub struct Made {
    #[serde(default)]
    made: Option<String>,
}

/// `GET /portal/subscriptions`.
pub async fn subscriptions(
    State(served): State<Served>,
    signed: SignedIn,
    Query(made): Query<Made>,
) -> Response {
    let answer =
        call(&served.api, &signed.via, http::Method::GET, "/v1/subscriptions", None, "application/json")
            .await;
    match answer.json::<Subscriptions>() {
        Ok(list) => {
            // Only the title of a listing the person can see is echoed, never arbitrary text.
            let titles = match &made.made {
                Some(_) => listings(&served, &signed, &Search::default()).await.unwrap_or_default(),
                None => Vec::new(),
            };
            let made = made
                .made
                .filter(|m| titles.iter().any(|l| l.title == *m))
                .map(|m| format!("You asked to use {m}; the table shows where it stands"));
            render(StatusCode::OK, &SubscriptionsPage { chrome: chrome(&signed), items: list.items, made })
        }
        Err(refusal) => super::refused(chrome(&signed), &refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(name: &str, category: Option<&str>) -> Listing {
        serde_json::from_value(serde_json::json!({
            "namespace": "north-apps", "name": name, "title": name, "classification": "official",
            "category": category,
        }))
        .unwrap()
    }

    #[test]
    fn each_category_is_offered_once_in_order_with_the_chosen_one_marked() {
        let all = [
            listing("payroll", Some("payroll")),
            listing("bins", Some("waste")),
            listing("pay-2", Some("payroll")),
            listing("plain", None),
            listing("blank", Some("")),
        ];
        assert_eq!(
            categories(&all, "waste"),
            vec![("payroll".to_owned(), false), ("waste".to_owned(), true)]
        );
        assert!(categories(&all, "").iter().all(|(_, chosen)| !chosen));
        assert!(categories(&[], "waste").is_empty());
    }
}

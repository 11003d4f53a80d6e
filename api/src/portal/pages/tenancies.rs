//! Your organisation's tenancies: each one's state, quota used against its limit, and this month's
//! spend with the month-end projection against the budget (`GET /v1/tenancies`, `/{name}`).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::format;
use crate::portal::Served;
use crate::portal::call::call;
use crate::portal::chrome::{Chrome, render};
use crate::portal::signed::SignedIn;

/// A tenancy as the API answers it (the fields the pages show).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenancy {
    name: String,
    organisation_name: String,
    #[serde(default)]
    sector: String,
    #[serde(default)]
    cost_centre: String,
    #[serde(default)]
    classification: String,
    state: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    quota: Quota,
    #[serde(default)]
    spend: Option<Spend>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    monthly_budget: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Quota {
    #[serde(default)]
    hard: BTreeMap<String, String>,
    #[serde(default)]
    used: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spend {
    period: String,
    month_to_date: String,
    projected: String,
    currency: String,
}

#[derive(Deserialize)]
struct List {
    items: Vec<Tenancy>,
}

/// One row of a quota table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    /// The resource, as people read it.
    pub resource: String,
    /// Used now.
    pub used: String,
    /// The limit.
    pub hard: String,
}

impl Tenancy {
    /// The tag's class.
    pub fn tag(&self) -> &'static str {
        format::tag_class(&self.state)
    }

    /// The state as people read it.
    pub fn state_text(&self) -> &'static str {
        format::state_text(&self.state)
    }

    /// Spend so far this month.
    pub fn month_to_date(&self) -> String {
        self.spend
            .as_ref()
            .map_or_else(|| "Not measured yet".into(), |s| format::money(&s.month_to_date, &s.currency))
    }

    /// Spend by the month's end at today's rate.
    pub fn projected(&self) -> String {
        self.spend
            .as_ref()
            .map_or_else(|| "Not measured yet".into(), |s| format::money(&s.projected, &s.currency))
    }

    /// The month the spend is for.
    pub fn period(&self) -> String {
        self.spend.as_ref().map_or_else(String::new, |s| format::month(&s.period))
    }

    /// The budget, where set.
    pub fn budget(&self) -> String {
        let currency = self.spend.as_ref().map_or("GBP", |s| s.currency.as_str());
        self.monthly_budget.as_deref().map_or_else(|| "No budget set".into(), |b| format::money(b, currency))
    }

    /// Whether the projection passes the budget (compared exactly).
    pub fn over_budget(&self) -> bool {
        let parse = |s: &str| s.parse::<rust_decimal::Decimal>().ok();
        match (
            self.spend.as_ref().and_then(|s| parse(&s.projected)),
            self.monthly_budget.as_deref().and_then(parse),
        ) {
            (Some(projected), Some(budget)) => projected > budget,
            _ => false,
        }
    }

    /// Quota used against hard, one row per resource limited.
    pub fn quota_rows(&self) -> Vec<QuotaRow> {
        self.quota
            .hard
            .iter()
            .map(|(name, hard)| QuotaRow {
                resource: format::resource(name),
                used: self.quota.used.get(name).cloned().unwrap_or_else(|| "0".into()),
                hard: hard.clone(),
            })
            .collect()
    }

    /// When a sandbox expires.
    pub fn expires(&self) -> Option<String> {
        self.expires_at.as_deref().map(format::date)
    }
}

#[derive(Template)]
#[template(path = "portal/tenancies.html")]
struct ListPage {
    chrome: Chrome,
    tenancies: Vec<Tenancy>,
}

#[derive(Template)]
#[template(path = "portal/tenancy.html")]
struct ShowPage {
    chrome: Chrome,
    t: Tenancy,
}

const SECTION: &str = "/portal/tenancies";

/// `GET /portal/tenancies`.
pub async fn list(State(served): State<Served>, signed: SignedIn) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let answer =
        call(&served.api, &signed.via, http::Method::GET, "/v1/tenancies", None, "application/json").await;
    match answer.json::<List>() {
        Ok(list) => render(StatusCode::OK, &ListPage { chrome, tenancies: list.items }),
        Err(refusal) => super::refused(chrome, &refusal),
    }
}

/// `GET /portal/tenancies/{name}`: another organisation's tenancy is "Page not found", as the API
/// answers.
pub async fn show(State(served): State<Served>, signed: SignedIn, Path(name): Path<String>) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let path = format!("/v1/tenancies/{}", crate::auth::http::percent(&name));
    let answer = call(&served.api, &signed.via, http::Method::GET, &path, None, "application/json").await;
    match answer.json::<Tenancy>() {
        Ok(t) => render(StatusCode::OK, &ShowPage { chrome, t }),
        Err(refusal) => super::refused(chrome, &refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenancy(projected: &str, budget: Option<&str>) -> Tenancy {
        serde_json::from_value(serde_json::json!({
            "name": "adult-social-care", "organisationName": "Northshire", "state": "Ready",
            "quota": {"hard": {"cpu": "4", "memory": "8Gi"}, "used": {"cpu": "500m"}},
            "spend": {"period": "2026-12", "monthToDate": "12.5", "projected": projected, "currency": "GBP"},
            "monthlyBudget": budget,
        }))
        .unwrap()
    }

    #[test]
    fn the_projection_is_compared_with_the_budget_exactly() {
        assert!(tenancy("100.01", Some("100.00")).over_budget());
        assert!(!tenancy("100.00", Some("100")).over_budget());
        assert!(!tenancy("100.01", None).over_budget());
        assert_eq!(tenancy("1", None).budget(), "No budget set");
    }

    #[test]
    fn quota_rows_show_what_is_unused_as_zero() {
        let rows = tenancy("1", None).quota_rows();
        assert_eq!(rows[0], QuotaRow { resource: "CPU".into(), used: "500m".into(), hard: "4".into() });
        assert_eq!(rows[1], QuotaRow { resource: "Memory".into(), used: "0".into(), hard: "8Gi".into() });
    }

    #[test]
    fn an_organisations_tenancy_page_escapes_what_it_shows() {
        let mut t = tenancy("1", None);
        t.organisation_name = "<script>alert(1)</script>".into();
        let html = ShowPage { chrome: Chrome::signed_in("Nora", "c", SECTION), t }.render().unwrap();
        assert!(!html.contains("<script>alert(1)"), "escaped");
        assert!(
            html.contains("&#60;script&#62;alert(1)") || html.contains("&lt;script&gt;alert(1)"),
            "{html}"
        );
    }
}

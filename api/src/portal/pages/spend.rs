//! Spend, for finance: a month's spend grouped by organisation, sector, cost centre, service or
//! tenancy (`GET /v1/usage`), the year month by month as a chart drawn on the server
//! (`/v1/reports/annual`, SVG, shown as an image with its figures in a table beside it), what
//! sharing saved (`/v1/reports/savings`), and the same month as CSV or FOCUS to download (the
//! API's own bytes, read `asOf` the instant the page's figures end, so the file's totals are the
//! page's even while the month is open).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::format;
use crate::auth::http::percent;
use crate::portal::Served;
use crate::portal::call::call;
use crate::portal::chrome::{Chrome, render};
use crate::portal::signed::SignedIn;

const SECTION: &str = "/portal/spend";
const GROUPINGS: [(&str, &str); 5] = [
    ("organisation", "Organisation"),
    ("sector", "Sector"),
    ("cost-centre", "Cost centre"),
    ("service", "Service"),
    ("tenancy", "Tenancy"),
];

/// What the page shows.
#[derive(Debug, Clone, Deserialize)]
pub struct Asked {
    period: Option<String>,
    by: Option<String>,
}

impl Asked {
    /// The month (this one unless a `YYYY-MM` is given) and the grouping (organisation unless one
    /// of the five); the API checks them again.
    fn settle(&self, now: jiff::Timestamp) -> (String, &'static str) {
        let this = now.strftime("%Y-%m").to_string();
        let period = self
            .period
            .clone()
            .filter(|p| p.len() == 7 && format!("{p}-01").parse::<jiff::civil::Date>().is_ok())
            .unwrap_or(this);
        let by = GROUPINGS
            .iter()
            .map(|(k, _)| *k)
            .find(|k| self.by.as_deref() == Some(*k))
            .unwrap_or("organisation");
        (period, by)
    }
}

/// One group's spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group.
    pub name: String,
    /// Its organisation's name, where it has one.
    pub organisation: String,
    /// Its spend.
    pub amount: String,
}

/// A month's spend by group, summed exactly from the report's lines.
pub fn groups(lines: &[Value], currency: &str) -> Vec<Group> {
    let mut sums: BTreeMap<String, (String, Decimal)> = BTreeMap::new();
    for l in lines {
        let group = l["group"].as_str().unwrap_or_default().to_owned();
        let amount: Decimal = l["amount"].as_str().and_then(|a| a.parse().ok()).unwrap_or_default();
        let entry = sums.entry(group).or_insert_with(|| (String::new(), Decimal::ZERO));
        if let Some(name) = l["organisationName"].as_str() {
            entry.0 = name.to_owned();
        }
        entry.1 += amount;
    }
    sums.into_iter()
        .map(|(name, (organisation, amount))| Group {
            name,
            organisation,
            amount: format::money(&amount.to_string(), currency),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "portal/spend.html")]
struct SpendPage {
    chrome: Chrome,
    period: String,
    period_text: String,
    by: &'static str,
    by_label: &'static str,
    closed: bool,
    /// Where an open month's figures end, RFC 3339 (the downloads' `asOf`).
    until: String,
    /// The same, as people read it.
    until_text: String,
    groups: Vec<Group>,
    total: String,
    /// `(value, label, selected)`.
    periods: Vec<(String, String, bool)>,
    /// `(value, label, selected)`.
    groupings: Vec<(&'static str, &'static str, bool)>,
    year: String,
    /// `(month, total)` of the year.
    months: Vec<(String, String)>,
    /// `(service, provider, consumers, cost, each alone, saved)`.
    savings: Vec<(String, String, String, String, String, String)>,
}

/// `(month, total)` of each month the year's report has: `months` lists only the months reported
/// (`["2026-12", false]`), `monthTotals` all twelve, January first.
fn month_totals(annual: &Value, currency: &str) -> Vec<(String, String)> {
    let totals = annual["monthTotals"].as_array().cloned().unwrap_or_default();
    annual["months"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            let period = m.get(0).and_then(Value::as_str)?;
            let index = period.get(5..7)?.parse::<usize>().ok()?.checked_sub(1)?;
            let total = totals.get(index)?.as_str()?;
            Some((format::month(period), format::money(total, currency)))
        })
        .collect()
}

/// The twelve months up to `now`'s, newest first.
fn recent(now: jiff::Timestamp) -> Vec<String> {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = today.first_of_month();
    (0..12i32)
        .filter_map(|i| first.checked_sub(jiff::Span::new().months(i)).ok())
        .map(|d| d.strftime("%Y-%m").to_string())
        .collect()
}

/// `GET /portal/spend`.
pub async fn show(State(served): State<Served>, signed: SignedIn, Query(asked): Query<Asked>) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let now = jiff::Timestamp::now();
    let (period, by) = asked.settle(now);
    let get = |path: String| {
        let via = signed.via.clone();
        let api = served.api.clone();
        async move { call(&api, &via, http::Method::GET, &path, None, "application/json").await.json::<Value>() }
    };
    // Every page of the month's lines, all read as of one instant (an open month's figures grow).
    let as_of = jiff::Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
    let as_of = percent(&as_of.to_string());
    let mut lines: Vec<Value> = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    let report = loop {
        pages += 1;
        let cursor = next.as_deref().map(|c| format!("&cursor={}", percent(c))).unwrap_or_default();
        let page =
            match get(format!("/v1/usage?period={period}&by={by}&limit=10000&asOf={as_of}{cursor}")).await {
                Ok(p) => p,
                Err(refusal) => return super::refused(chrome, &refusal),
            };
        lines.extend(page["lines"].as_array().cloned().unwrap_or_default());
        let following = page["next"].as_str().map(str::to_owned);
        // 10,000 lines a page: 50 pages is more than any month holds; a cursor that repeats
        // would loop.
        if following.is_none() || following == next || pages >= 50 {
            break page;
        }
        next = following;
    };
    let currency = report["currency"].as_str().unwrap_or("GBP").to_owned();
    let year = period.get(..4).unwrap_or("2026").to_owned();
    let annual = match get(format!("/v1/reports/annual?year={year}&by={by}")).await {
        Ok(a) => a,
        Err(refusal) => return super::refused(chrome, &refusal),
    };
    let months = month_totals(&annual, &currency);
    let savings = match get(format!("/v1/reports/savings?period={period}")).await {
        Ok(s) => s["services"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                let consumers: Vec<&str> = s["consumers"]
                    .as_array()
                    .map(|c| c.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                (
                    text("service"),
                    text("provider"),
                    consumers.join(", "),
                    format::money(&text("cost"), &currency),
                    format::money(&text("eachAlone"), &currency),
                    format::money(&text("saved"), &currency),
                )
            })
            .collect(),
        Err(refusal) => return super::refused(chrome, &refusal),
    };
    let page = SpendPage {
        chrome,
        period_text: format::month(&period),
        closed: report["closed"].as_bool().unwrap_or(false),
        until: percent(report["until"].as_str().unwrap_or_default()),
        until_text: format::instant(report["until"].as_str().unwrap_or_default()),
        groups: groups(&lines, &currency),
        total: format::money(report["total"].as_str().unwrap_or("0"), &currency),
        periods: recent(now).into_iter().map(|p| (p.clone(), format::month(&p), p == period)).collect(),
        groupings: GROUPINGS.iter().map(|(k, label)| (*k, *label, *k == by)).collect(),
        by,
        by_label: GROUPINGS.iter().find(|(k, _)| *k == by).map_or("Organisation", |(_, l)| *l),
        year,
        months,
        savings,
        period,
    };
    render(StatusCode::OK, &page)
}

/// What a download is.
#[derive(Debug, Deserialize)]
pub struct Download {
    period: Option<String>,
    by: Option<String>,
    format: Option<String>,
    /// Where the page's figures ended (an open month's): the file's end too.
    #[serde(rename = "asOf")]
    as_of: Option<String>,
}

/// `GET /portal/spend/download`: the API's CSV or FOCUS bytes for the month, as a file.
pub async fn download(
    State(served): State<Served>,
    signed: SignedIn,
    Query(asked): Query<Download>,
) -> Response {
    let chrome = Chrome::signed_in(&signed.session.name, &signed.session.csrf, SECTION);
    let (period, by) = Asked { period: asked.period, by: asked.by }.settle(jiff::Timestamp::now());
    let (accept, file) = match asked.format.as_deref() {
        Some("focus") => (crate::v1::usage::FOCUS_CSV, format!("commons-focus-{period}.csv")),
        _ => ("text/csv", format!("commons-spend-{period}-by-{by}.csv")),
    };
    let as_of =
        asked.as_of.filter(|a| !a.is_empty()).map(|a| format!("&asOf={}", percent(&a))).unwrap_or_default();
    let path = format!("/v1/usage?period={period}&by={by}{as_of}");
    let answer = call(&served.api, &signed.via, http::Method::GET, &path, None, accept).await;
    if !answer.status.is_success() {
        return super::refused(chrome, &answer.refusal());
    }
    attachment(&answer.content_type, &file, answer.body)
}

/// `GET /portal/spend/chart.svg`: the year's chart, drawn by the API.
pub async fn chart(State(served): State<Served>, signed: SignedIn, Query(asked): Query<Asked>) -> Response {
    let (period, by) = asked.settle(jiff::Timestamp::now());
    let path = format!("/v1/reports/annual?year={}&by={by}", period.get(..4).unwrap_or_default());
    let answer = call(&served.api, &signed.via, http::Method::GET, &path, None, "image/svg+xml").await;
    if !answer.status.is_success() {
        return answer.status.into_response();
    }
    // An image is never a document: no script in it runs, and it is sandboxed if opened alone.
    let mut response = ([(header::CONTENT_TYPE, "image/svg+xml")], answer.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    response
}

fn attachment(content_type: &str, file: &str, body: bytes::Bytes) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_groups_lines_are_summed_exactly() {
        let lines = vec![
            json!({"group": "north", "organisationName": "Northshire", "charge": "cpu", "amount": "0.10"}),
            json!({"group": "north", "charge": "memory", "amount": "0.20"}),
            json!({"group": "south", "charge": "cpu", "amount": "1.005"}),
        ];
        assert_eq!(
            groups(&lines, "GBP"),
            [
                Group { name: "north".into(), organisation: "Northshire".into(), amount: "£0.30".into() },
                Group { name: "south".into(), organisation: String::new(), amount: "£1.00".into() },
            ]
        );
    }

    #[test]
    fn each_reported_month_is_shown_with_its_own_total() {
        let mut totals = vec!["0"; 12];
        totals[10] = "12.5";
        totals[11] = "0.01";
        let annual = json!({"months": [["2026-11", true], ["2026-12", false]], "monthTotals": totals});
        assert_eq!(
            month_totals(&annual, "GBP"),
            vec![
                ("November 2026".to_owned(), "£12.50".to_owned()),
                ("December 2026".to_owned(), "£0.01".to_owned())
            ]
        );
        assert!(month_totals(&json!({}), "GBP").is_empty());
    }

    #[test]
    fn a_period_or_grouping_not_offered_is_this_month_by_organisation() {
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let ask =
            |period: &str, by: &str| Asked { period: Some(period.into()), by: Some(by.into()) }.settle(now);
        assert_eq!(ask("2026-11", "sector"), ("2026-11".to_owned(), "sector"));
        assert_eq!(ask("2026-13", "colour"), ("2026-12".to_owned(), "organisation"));
        assert_eq!(ask("../../x", "tenancy"), ("2026-12".to_owned(), "tenancy"));
        assert_eq!(recent(now)[..3], ["2026-12".to_owned(), "2026-11".to_owned(), "2026-10".to_owned()]);
        assert_eq!(recent(now).len(), 12);
    }
}

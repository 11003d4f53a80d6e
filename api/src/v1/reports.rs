//! `/v1/reports`: the metering reports finance teams use, over HTTP, each for the caller's
//! organisations (every organisation's with `list organisations`) and authorised as `get usage`:
//! the year's spend month by month (`annual`: JSON, CSV or an SVG chart), what sharing saved in a
//! month (`savings`: JSON or CSV), and the forecast of each tenancy (`forecast`: month-to-date,
//! month-end projection and next month's cost of its quota). A closed period's answer is the same
//! bytes on every call, with a strong ETag.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::future::BoxFuture;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::usage::{UsageError, media_ranges, respond};
use super::{Caller, Scope, V1, authorise, invalid_field};
use crate::authz::Action;
use crate::problem::Problem;

const GET: Action = Action { verb: "get", resource: "usage" };

/// A report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// JSON.
    Json,
    /// CSV.
    Csv,
    /// An SVG chart (the annual report).
    Svg,
}

impl ReportFormat {
    /// The media type it is served as.
    pub fn media(self) -> &'static str {
        match self {
            ReportFormat::Json => "application/json",
            ReportFormat::Csv => "text/csv; charset=utf-8",
            ReportFormat::Svg => "image/svg+xml",
        }
    }
}

/// Which report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A year's spend month by month, grouped `by`.
    Annual {
        /// The year.
        year: i16,
        /// tenancy, organisation, sector, cost-centre or service.
        by: String,
    },
    /// What sharing saved in a month (`YYYY-MM`).
    Savings {
        /// The month.
        period: String,
    },
}

/// A report question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    /// The report.
    pub report: Report,
    /// Only these organisations'; `None`: everything.
    pub organisations: Option<Vec<String>>,
    /// The format.
    pub format: ReportFormat,
}

/// A report, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDocument {
    /// Whether it can never change (every month in it closed).
    pub closed: bool,
    /// The bytes.
    pub body: Vec<u8>,
}

/// Where the ledger's reports come from (the metering code, in the `commons` binary).
pub trait ReportSource: Send + Sync + std::fmt::Debug {
    /// The report asked for.
    fn report(&self, query: ReportQuery) -> BoxFuture<'_, Result<ReportDocument, UsageError>>;
}

/// The format `Accept` asks for among `offered`; `None` when it accepts none of them.
fn negotiate(headers: &HeaderMap, offered: &[ReportFormat]) -> Option<ReportFormat> {
    let Some(ranges) = media_ranges(headers) else { return offered.first().copied() };
    ranges.into_iter().find_map(|media| {
        let wanted = match media {
            "application/json" | "application/*" | "*/*" => ReportFormat::Json,
            "text/csv" | "text/*" => ReportFormat::Csv,
            "image/svg+xml" | "image/*" => ReportFormat::Svg,
            _ => return None,
        };
        offered.contains(&wanted).then_some(wanted)
    })
}

fn not_acceptable(offered: &[ReportFormat], path: &str) -> Problem {
    let media: Vec<&str> = offered.iter().map(|f| f.media().split(';').next().unwrap_or_default()).collect();
    Problem::new(StatusCode::NOT_ACCEPTABLE, "not-acceptable", "No acceptable format")
        .with_detail(format!("this report is served as {}", media.join(", ")))
        .with_instance(path.to_owned())
}

fn scope_of(scope: Scope) -> Option<Vec<String>> {
    match scope {
        Scope::All => None,
        Scope::Own(own) => Some(own),
    }
}

async fn serve(v1: &V1, query: ReportQuery, headers: &HeaderMap, path: &str) -> Result<Response, Problem> {
    let format = query.format;
    let document = v1.reports.report(query).await.map_err(|e| match e {
        UsageError::Invalid { field, detail } => invalid_field(field, &detail, path),
        UsageError::Unavailable(reason) => {
            tracing::warn!(%reason, "a report cannot be made");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "usage-unavailable",
                "The report cannot be made now",
            )
            .with_detail("the ledger cannot be read; try again shortly")
            .with_instance(path.to_owned())
        }
    })?;
    Ok(respond(headers, document.closed, format.media(), document.body))
}

/// The annual report's query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnnualParams {
    /// The year (UTC), for example 2026. Required.
    #[param(minimum = 1970, maximum = 9999)]
    year: Option<i64>,
    /// organisation (the default), tenancy, sector, cost-centre or service.
    by: Option<String>,
}

/// `GET /v1/reports/annual`.
#[utoipa::path(
    get,
    path = "/v1/reports/annual",
    tag = "reports",
    params(AnnualParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The year's spend month by month, grouped by `by`, with the services shared; for the caller's organisations (all, with list organisations)",
         content((Object = "application/json"), (String = "text/csv"), (String = "image/svg+xml")),
         headers(("ETag" = String, description = "For a year whose every month is closed: strong, the same on every call"))),
        (status = 304, description = "A closed year's answer is unchanged (If-None-Match)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs get usage", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "No format the Accept header allows", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad year or by", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The ledger cannot be read now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn annual(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    params: Result<Query<AnnualParams>, QueryRejection>,
    headers: HeaderMap,
    Caller(who): Caller,
) -> Result<Response, Problem> {
    let path = uri.path();
    let Query(params) = params.map_err(|e| invalid_field("query", &e.body_text(), path))?;
    let scope = authorise(&v1, &who, GET, path).await?;
    let offered = [ReportFormat::Json, ReportFormat::Csv, ReportFormat::Svg];
    let format = negotiate(&headers, &offered).ok_or_else(|| not_acceptable(&offered, path))?;
    let year = params.year.ok_or_else(|| invalid_field("year", "required, for example 2026", path))?;
    let year = i16::try_from(year)
        .ok()
        .filter(|y| (1970..=9999).contains(y))
        .ok_or_else(|| invalid_field("year", "a year from 1970 to 9999", path))?;
    let report = Report::Annual { year, by: params.by.unwrap_or_else(|| "organisation".to_owned()) };
    serve(&v1, ReportQuery { report, organisations: scope_of(scope), format }, &headers, path).await
}

/// The savings report's query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SavingsParams {
    /// The month, `YYYY-MM` (UTC). Required.
    period: Option<String>,
}

/// `GET /v1/reports/savings`.
#[utoipa::path(
    get,
    path = "/v1/reports/savings",
    tag = "reports",
    params(SavingsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "For each shared service the caller's organisations provide or use (all, with list organisations): what it cost, what its consumers paid, what each would have paid alone, and what sharing saved",
         content((Object = "application/json"), (String = "text/csv")),
         headers(("ETag" = String, description = "For a closed month: strong, the same on every call"))),
        (status = 304, description = "A closed month's answer is unchanged (If-None-Match)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs get usage", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "No format the Accept header allows", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad period", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The ledger cannot be read now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn savings(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    params: Result<Query<SavingsParams>, QueryRejection>,
    headers: HeaderMap,
    Caller(who): Caller,
) -> Result<Response, Problem> {
    let path = uri.path();
    let Query(params) = params.map_err(|e| invalid_field("query", &e.body_text(), path))?;
    let scope = authorise(&v1, &who, GET, path).await?;
    let offered = [ReportFormat::Json, ReportFormat::Csv];
    let format = negotiate(&headers, &offered).ok_or_else(|| not_acceptable(&offered, path))?;
    let period = params.period.ok_or_else(|| invalid_field("period", "required, YYYY-MM", path))?;
    let report = Report::Savings { period };
    serve(&v1, ReportQuery { report, organisations: scope_of(scope), format }, &headers, path).await
}

/// One tenancy's forecast.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenancyForecast {
    /// The tenancy.
    pub tenancy: String,
    /// The organisation's id.
    pub organisation: String,
    /// The cost centre.
    pub cost_centre: String,
    /// Spend this month so far, once the meter has measured it (exact decimal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month_to_date: Option<String>,
    /// The month-end projection if what the tenancy holds now is held until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projected: Option<String>,
    /// Next month's cost of holding all of its quota all month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_month: Option<String>,
    /// Why a figure is missing, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The forecast of the caller's tenancies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForecastReport {
    /// This month, `YYYY-MM`.
    pub period: String,
    /// The month `nextMonth` prices.
    pub next_period: String,
    /// The currency of every amount.
    pub currency: String,
    /// One per tenancy, by name.
    pub tenancies: Vec<TenancyForecast>,
    /// The sums of the figures given: `monthToDate`, `projected`, `nextMonth`.
    pub totals: ForecastTotals,
}

/// Sums (exact decimal strings).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForecastTotals {
    /// Spend this month so far.
    pub month_to_date: String,
    /// The month-end projection.
    pub projected: String,
    /// Next month's cost of every quota.
    pub next_month: String,
}

/// `GET /v1/reports/forecast`.
#[utoipa::path(
    get,
    path = "/v1/reports/forecast",
    tag = "reports",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "For each of the caller's organisations' tenancies (all, with list organisations): this month so far, the month-end projection, and next month's cost of its quota; with the totals", body = ForecastReport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs get usage", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No rate card is published, or the cluster cannot be read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn forecast(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    Caller(who): Caller,
) -> Result<Json<ForecastReport>, Problem> {
    let path = uri.path();
    let scope = authorise(&v1, &who, GET, path).await?;
    let mut tenancies: Vec<_> = v1
        .tenancies
        .state()
        .into_iter()
        .filter(|t| !t.spec.organisation.id.is_empty() && scope.covers(&t.spec.organisation.id))
        .collect();
    tenancies.sort_by_key(|t| t.metadata.name.clone());
    let quotas = tenancies.iter().map(|t| t.spec.quota.clone().unwrap_or_default()).collect();
    let estimates = v1.forecaster.monthly_each(quotas).await.map_err(|e| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "forecast-unavailable",
            "The forecast cannot be made now",
        )
        .with_detail(e)
        .with_instance(path.to_owned())
    })?;
    let now = jiff::Timestamp::now();
    let period = now.strftime("%Y-%m").to_string();
    let mut next_period = String::new();
    let mut currency = String::new();
    let (mut to_date, mut projected, mut next) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    let sum = |into: &mut Decimal, figure: &str| {
        if let Ok(d) = figure.parse::<Decimal>() {
            *into += d;
        }
    };
    let mut rows = Vec::new();
    for (t, estimate) in tenancies.iter().zip(estimates) {
        let name = t.metadata.name.clone().unwrap_or_default();
        // The meter's figures are this month's only.
        let spend = v1.spend.of(&name).filter(|s| s.period == period);
        let mut notes = Vec::new();
        if spend.is_none() {
            notes.push("not measured by the meter yet this month".to_owned());
        }
        let next_month = match estimate {
            Ok(e) => {
                next_period = e.month.clone();
                currency = e.currency.clone();
                sum(&mut next, &e.total);
                Some(e.total)
            }
            Err(why) => {
                notes.push(why);
                None
            }
        };
        if let Some(s) = &spend {
            sum(&mut to_date, &s.month_to_date);
            sum(&mut projected, &s.projected);
            currency = s.currency.clone();
        }
        rows.push(TenancyForecast {
            tenancy: name,
            organisation: t.spec.organisation.id.clone(),
            cost_centre: t.spec.organisation.cost_centre.clone(),
            month_to_date: spend.as_ref().map(|s| s.month_to_date.clone()),
            projected: spend.map(|s| s.projected),
            next_month,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        });
    }
    Ok(Json(ForecastReport {
        period,
        next_period,
        currency,
        tenancies: rows,
        totals: ForecastTotals {
            month_to_date: to_date.to_string(),
            projected: projected.to_string(),
            next_month: next.to_string(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, header};

    fn accept(value: &str, offered: &[ReportFormat]) -> Option<ReportFormat> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&h, offered)
    }

    #[test]
    fn only_a_format_the_report_offers_is_chosen() {
        let annual = [ReportFormat::Json, ReportFormat::Csv, ReportFormat::Svg];
        let savings = [ReportFormat::Json, ReportFormat::Csv];
        assert_eq!(accept("image/svg+xml", &annual), Some(ReportFormat::Svg));
        assert_eq!(accept("image/svg+xml", &savings), None);
        assert_eq!(accept("image/svg+xml;q=0.5, text/csv", &annual), Some(ReportFormat::Csv));
        assert_eq!(accept("*/*", &savings), Some(ReportFormat::Json));
        assert_eq!(negotiate(&HeaderMap::new(), &annual), Some(ReportFormat::Json));
    }
}

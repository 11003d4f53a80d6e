//! `GET /v1/usage`: a month's spend from the ledger, for the caller's organisations (every
//! organisation's, and the platform's unallocated capacity, with `list organisations`), grouped
//! `by` tenancy, organisation, sector, cost centre or service; JSON (cursor-paginated), CSV or FOCUS
//! by `Accept`. A closed month never changes, so its answer is the same bytes on every call, with a
//! strong ETag (and `304` for `If-None-Match`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use super::{Caller, Scope, V1, authorise, invalid_field};
use crate::authz::Action;
use crate::problem::Problem;

const GET: Action = Action { verb: "get", resource: "usage" };

/// FOCUS (FinOps Open Cost and Usage Specification) as CSV.
pub const FOCUS_CSV: &str = "application/vnd.finops.focus+csv";

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageFormat {
    /// The report as JSON.
    Json,
    /// The report as CSV.
    Csv,
    /// FOCUS rows as CSV (`by` does not apply).
    Focus,
}

/// A usage question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// `YYYY-MM`.
    pub period: String,
    /// tenancy, organisation, sector, cost-centre or service.
    pub by: String,
    /// Only these organisations' lines; `None`: every line.
    pub organisations: Option<Vec<String>>,
    /// The format.
    pub format: UsageFormat,
    /// Usage up to this instant (checked: not in the future); `None`: up to now.
    pub as_of: Option<jiff::Timestamp>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageDocument {
    /// The report as JSON (`lines` is paginated by the route).
    Json {
        /// Whether the month is closed.
        closed: bool,
        /// The report.
        report: Value,
    },
    /// CSV or FOCUS text, rendered as it is sent.
    Text {
        /// Whether the month is closed.
        closed: bool,
        /// The rows.
        text: Arc<dyn TextRows>,
    },
}

impl PartialEq for dyn TextRows {
    fn eq(&self, other: &Self) -> bool {
        chunks(self).eq(chunks(other))
    }
}

/// Text (CSV) made a slice of rows at a time, so that a long report is streamed to the client as
/// it is rendered and never held whole.
pub trait TextRows: Send + Sync + std::fmt::Debug {
    /// The header row.
    fn header(&self) -> Vec<u8>;
    /// How many rows follow it.
    fn len(&self) -> usize;
    /// Whether no row follows it.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Rows `from..to`.
    fn rows(&self, from: usize, to: usize) -> Vec<u8>;
}

/// Rows per chunk sent.
const ROWS_PER_CHUNK: usize = 500;

/// The header, then the rows a chunk at a time, each rendered only when it is asked for.
fn chunks(text: &dyn TextRows) -> impl Iterator<Item = Vec<u8>> + '_ {
    let starts = (0..text.len()).step_by(ROWS_PER_CHUNK);
    std::iter::once(text.header())
        .chain(starts.map(move |from| text.rows(from, (from + ROWS_PER_CHUNK).min(text.len()))))
}

/// A strong ETag of the text, hashed a chunk at a time (nothing is kept).
fn text_etag(text: &dyn TextRows) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for chunk in chunks(text) {
        context.update(&chunk);
    }
    tag_of(context.finish().as_ref())
}

/// The body that renders `text` as it is sent.
fn streamed(text: Arc<dyn TextRows>) -> Body {
    let len = text.len();
    let starts: Vec<Option<usize>> =
        std::iter::once(None).chain((0..len).step_by(ROWS_PER_CHUNK).map(Some)).collect();
    let stream = futures::stream::iter(starts).map(move |start| {
        let chunk = match start {
            None => text.header(),
            Some(from) => text.rows(from, (from + ROWS_PER_CHUNK).min(len)),
        };
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(chunk))
    });
    Body::from_stream(stream)
}

/// Why no usage can be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// A query parameter is wrong.
    #[error("{field}: {detail}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// Why.
        detail: String,
    },
    /// The ledger or the cluster cannot be read.
    #[error("{0}")]
    Unavailable(String),
}

/// Where usage comes from (the ledger and the metering code, in the `commons` binary).
pub trait UsageSource: Send + Sync + std::fmt::Debug {
    /// The usage asked for.
    fn usage(&self, query: UsageQuery) -> BoxFuture<'_, Result<UsageDocument, UsageError>>;
}

/// The query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// The month, `YYYY-MM` (UTC). Required.
    period: Option<String>,
    /// tenancy (the default), organisation, sector, cost-centre or service.
    by: Option<String>,
    /// JSON: lines per page (default 1000, at most 10000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// JSON: where the page starts (the `next` of the page before).
    cursor: Option<String>,
    /// Usage up to this instant (RFC 3339, not in the future; default: now). Give the `until` of
    /// an answer already read, and every page and format of the month has the same figures as it.
    /// An instant at or after the month's end is the whole month; within a closed month it is
    /// refused, since a closed month's figures are final and whole.
    #[param(value_type = Option<String>, format = DateTime)]
    as_of: Option<String>,
}

/// The format `Accept` asks for; `None` when it accepts none Commons gives.
pub fn negotiate(headers: &HeaderMap) -> Option<UsageFormat> {
    let Some(ranges) = media_ranges(headers) else { return Some(UsageFormat::Json) };
    ranges.into_iter().find_map(|media| match media {
        "application/json" | "application/*" | "*/*" => Some(UsageFormat::Json),
        "text/csv" | "text/*" => Some(UsageFormat::Csv),
        FOCUS_CSV => Some(UsageFormat::Focus),
        _ => None,
    })
}

/// The media ranges `Accept` names, most wanted first (weight 0 left out); `None` without it.
pub(super) fn media_ranges(headers: &HeaderMap) -> Option<Vec<&str>> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())?;
    let mut ranges: Vec<(f32, &str)> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let media = pieces.next()?;
            let q =
                pieces.find_map(|p| p.strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
            (q > 0.0).then_some((q, media))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    Some(ranges.into_iter().map(|(_, media)| media).collect())
}

/// The instant `asOf` names, to the millisecond (as answers give `until`), if it is not in the
/// future.
fn as_of(text: &str) -> Result<jiff::Timestamp, &'static str> {
    let at: jiff::Timestamp =
        text.parse().map_err(|_| "an RFC 3339 instant with its offset, such as 2026-12-03T10:51:03Z")?;
    if at > jiff::Timestamp::now() {
        return Err("in the future: usage is known only up to now");
    }
    jiff::Timestamp::from_millisecond(at.as_millisecond()).map_err(|_| "out of range")
}

/// A cursor: the offset of the page's first line, opaque to clients.
fn cursor(after: &Value) -> String {
    let text = serde_json::json!({"after": identity(after)}).to_string();
    URL_SAFE_NO_PAD.encode(text)
}

/// The identity of the line a cursor follows.
fn after(cursor: &str) -> Option<Value> {
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    v.get("after").filter(|a| a.as_array().is_some_and(|a| a.len() == 3)).cloned()
}

/// A line's identity in its report: its group, charge and corrected month (one line each). A
/// cursor names the line a page ended with, not a position, so lines added to an open month
/// between pages shift nothing: no line is given twice or passed over.
fn identity(line: &Value) -> Value {
    serde_json::json!([line.get("group"), line.get("charge"), line.get("corrects")])
}

/// A strong ETag: the SHA-256 of the bytes sent.
fn etag(body: &[u8]) -> String {
    tag_of(ring::digest::digest(&ring::digest::SHA256, body).as_ref())
}

/// The first 128 bits of a digest, quoted.
fn tag_of(digest: &[u8]) -> String {
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A month's usage as JSON (one page of it).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UsagePage {
    /// `YYYY-MM`.
    pub period: String,
    /// The month's start (RFC 3339).
    pub from: String,
    /// Where the figures end (RFC 3339, exclusive): the month's end once it is over, else the
    /// instant they were read at (`asOf`, or now). Pass it as `asOf` to read the same figures again.
    pub until: String,
    /// Whether the month is closed (its lines never change).
    pub closed: bool,
    /// The currency of every amount.
    pub currency: String,
    /// The whole month's total (not the page's), an exact decimal string.
    pub total: String,
    /// This page's lines: `group`, `organisationName`, `charge`, `quantity`, `amount`, `corrects`.
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<Value>,
    /// The cursor of the next page, or null.
    pub next: Option<String>,
}

/// `GET /v1/usage`.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "usage",
    params(Params),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The month's spend for the caller's organisations (all, with list organisations)",
         content((UsagePage = "application/json"), (String = "text/csv"), (String = "application/vnd.finops.focus+csv")),
         headers(("ETag" = String, description = "For a closed month: strong, the same on every call"))),
        (status = 304, description = "A closed month's answer is unchanged (If-None-Match)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this client's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 403, description = "Not allowed: needs get usage", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "No format the Accept header allows", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad period, by, limit, cursor or asOf", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The ledger cannot be read now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn usage(
    State(v1): State<Arc<V1>>,
    OriginalUri(uri): OriginalUri,
    params: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    Caller(who): Caller,
) -> Result<Response, Problem> {
    let path = uri.path();
    let Query(params) = params.map_err(|e| invalid_field("query", &e.body_text(), path))?;
    let scope = authorise(&v1, &who, GET, path).await?;
    let format = negotiate(&headers).ok_or_else(|| {
        Problem::new(StatusCode::NOT_ACCEPTABLE, "not-acceptable", "No acceptable format")
            .with_detail(format!("usage is served as application/json, text/csv or {FOCUS_CSV}"))
            .with_instance(path.to_owned())
    })?;
    let period = params.period.ok_or_else(|| invalid_field("period", "required, YYYY-MM", path))?;
    let as_of = match params.as_of.as_deref() {
        None => None,
        Some(text) => Some(as_of(text).map_err(|detail| invalid_field("asOf", detail, path))?),
    };
    let limit = params.limit.unwrap_or(1000);
    if limit == 0 || limit > 10_000 {
        return Err(invalid_field("limit", "from 1 to 10000", path));
    }
    let follows = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(after(c).ok_or_else(|| invalid_field("cursor", "not a cursor this API gave", path))?),
    };
    let query = UsageQuery {
        period,
        by: params.by.unwrap_or_else(|| "tenancy".to_owned()),
        organisations: match scope {
            Scope::All => None,
            Scope::Own(own) => Some(own),
        },
        format,
        as_of,
    };
    let document = v1.usage.usage(query).await.map_err(|e| match e {
        UsageError::Invalid { field, detail } => invalid_field(field, &detail, path),
        UsageError::Unavailable(reason) => {
            tracing::warn!(%reason, "usage cannot be read");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "usage-unavailable", "Usage cannot be read now")
                .with_detail("the ledger cannot be read; try again shortly")
                .with_instance(path.to_owned())
        }
    })?;
    let (closed, content_type, body) = match document {
        UsageDocument::Text { closed, text } => {
            let media = if format == UsageFormat::Focus { FOCUS_CSV } else { "text/csv" };
            // The tag of a closed month needs every byte: hashed a chunk at a time, then sent
            // rendering again a chunk at a time. An open month's is never computed.
            let tag = if closed { text_etag(text.as_ref()) } else { String::new() };
            return Ok(respond_body(&headers, closed, &format!("{media}; charset=utf-8"), tag, || {
                streamed(text)
            }));
        }
        UsageDocument::Json { closed, mut report } => {
            let lines =
                report.get_mut("lines").and_then(Value::as_array_mut).map(std::mem::take).unwrap_or_default();
            let start = match &follows {
                None => 0,
                Some(id) => {
                    lines.iter().position(|l| identity(l) == *id).map(|i| i + 1).ok_or_else(|| {
                        invalid_field(
                            "cursor",
                            "the line this cursor follows is not in the report; start again without a cursor",
                            path,
                        )
                    })?
                }
            };
            let end = (start + limit).min(lines.len());
            report["lines"] = Value::Array(lines[start..end].to_vec());
            report["next"] = match lines[start..end].last() {
                Some(last) if end < lines.len() => Value::String(cursor(last)),
                _ => Value::Null,
            };
            let body = serde_json::to_vec(&report).unwrap_or_default();
            (closed, "application/json".to_owned(), body)
        }
    };
    Ok(respond(&headers, closed, &content_type, body))
}

/// The answer: a closed period's with a strong ETag (and `304` when `If-None-Match` has it),
/// cacheable; an open one's never stored.
pub(super) fn respond(headers: &HeaderMap, closed: bool, content_type: &str, body: Vec<u8>) -> Response {
    let tag = if closed { etag(&body) } else { String::new() };
    respond_body(headers, closed, content_type, tag, || Body::from(body))
}

/// The same, for a body made only if it is sent, with its tag (a closed period's) computed before.
fn respond_body(
    headers: &HeaderMap,
    closed: bool,
    content_type: &str,
    tag: String,
    body: impl FnOnce() -> Body,
) -> Response {
    let mut response = if closed
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(body());
        if let Ok(v) = HeaderValue::from_str(content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept, Authorization"));
    if closed {
        // A closed period never changes: the same bytes, the same strong tag, every time.
        if let Ok(v) = HeaderValue::from_str(&tag) {
            h.insert(header::ETAG, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    } else {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<UsageFormat> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&h)
    }

    #[test]
    fn the_format_follows_accept_with_its_weights() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(UsageFormat::Json));
        assert_eq!(accept("text/csv"), Some(UsageFormat::Csv));
        assert_eq!(accept(FOCUS_CSV), Some(UsageFormat::Focus));
        assert_eq!(accept("text/csv;q=0.5, application/json"), Some(UsageFormat::Json));
        assert_eq!(accept("application/json;q=0.1, text/csv"), Some(UsageFormat::Csv));
        assert_eq!(accept("*/*"), Some(UsageFormat::Json));
        assert_eq!(accept("image/png"), None);
        assert_eq!(accept("text/csv;q=0"), None);
    }

    #[test]
    fn cursors_name_the_line_a_page_ended_with_and_others_are_refused() {
        let line = serde_json::json!({"group": "north", "charge": "cpu", "corrects": "", "amount": "1.00"});
        let mut changed = line.clone();
        changed["amount"] = "2.50".into();
        assert_eq!(after(&cursor(&line)), Some(identity(&changed)), "the same line, its amount grown");
        assert_ne!(
            identity(&line),
            identity(&serde_json::json!({"group": "north", "charge": "memory", "corrects": ""}))
        );
        assert_eq!(after("bm9wZQ"), None);
        assert_eq!(after("!!"), None);
    }

    #[test]
    fn a_text_is_hashed_and_sent_a_chunk_at_a_time_as_the_same_bytes() {
        #[derive(Debug)]
        struct Numbers(usize);
        impl TextRows for Numbers {
            fn header(&self) -> Vec<u8> {
                b"n\n".to_vec()
            }
            fn len(&self) -> usize {
                self.0
            }
            fn rows(&self, from: usize, to: usize) -> Vec<u8> {
                (from..to).map(|n| format!("{n}\n")).collect::<String>().into_bytes()
            }
        }
        let text = Numbers(1201);
        let whole: Vec<u8> = chunks(&text).flatten().collect();
        assert_eq!(chunks(&text).count(), 1 + 3, "the header, then 500 rows a chunk");
        assert_eq!(whole, text.header().into_iter().chain(text.rows(0, 1201)).collect::<Vec<_>>());
        assert_eq!(text_etag(&text), etag(&whole), "the same tag as the bytes sent whole");
        let body = streamed(Arc::new(Numbers(1201)));
        let sent = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(http_body_util::BodyExt::collect(body))
            .unwrap()
            .to_bytes();
        assert_eq!(sent.as_ref(), whole.as_slice());
        assert_eq!(chunks(&Numbers(0)).count(), 1, "no rows: the header alone");
    }

    #[test]
    fn the_etag_is_strong_and_follows_the_bytes() {
        assert_eq!(etag(b"a"), etag(b"a"));
        assert_ne!(etag(b"a"), etag(b"b"));
        assert!(etag(b"a").starts_with('"'));
    }
}

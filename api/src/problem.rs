//! RFC 9457 problem details: every error the API returns is `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document (RFC 9457). `type` is a URI reference naming the kind of problem; `title` is
/// the same for every occurrence of that kind; `detail` explains this occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference that identifies the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path the problem occurred on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For invalid input: each field refused and why (an extension member).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// A field of the request body refused, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's path in the request body, for example `tenancy.quota.cpu`.
    pub field: String,
    /// Why.
    pub detail: String,
}

impl Problem {
    /// A problem of the given status, with a type under `https://commons.dev/problems/`.
    pub fn new(status: StatusCode, slug: &str, title: &'static str) -> Self {
        Problem {
            kind: format!("https://commons.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: None,
            instance: None,
            errors: Vec::new(),
        }
    }

    /// Adds the explanation of this occurrence.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the fields refused.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds the request path.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// The longest text answer of the framework's own (a rejected path or query, a refused method)
/// kept as a problem's `detail`.
const DETAIL_LIMIT: usize = 512;

/// Middleware that makes every error answer of the routes it wraps a problem document: the
/// framework's own refusals (405 for a method a route does not serve, 400 for a path it cannot
/// decode) are plain text, so they are rewritten with their status, their text as `detail` and
/// their other headers (`Allow`) kept. Answers that are problem documents already pass as they are.
pub async fn every_error_is_a_problem(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, DETAIL_LIMIT).await.unwrap_or_default();
    let title = status.canonical_reason().unwrap_or("Error");
    let slug = title.to_ascii_lowercase().replace([' ', '\''], "-");
    let mut problem = Problem::new(status, &slug, title).with_instance(path);
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    if !text.is_empty() {
        problem = problem.with_detail(text);
    }
    let mut rewritten = problem.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in parts.headers.iter() {
        rewritten.headers_mut().append(name.clone(), value.clone());
    }
    rewritten
}

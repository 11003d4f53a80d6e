//! The portal's calls to the REST API: every page reads and every form writes through the same
//! guarded `/v1` router an HTTP client reaches, in process, carrying the signed-in person's bearer
//! token. Authentication, RBAC, organisation scope, rate limits, idempotency keys and the audit
//! record are therefore the API's own; the portal implements no rule of its own.

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

/// What the portal's request carries from the browser's.
#[derive(Debug, Clone)]
pub struct Via {
    /// The session's bearer token.
    pub token: String,
    /// The browser's connection (the API limits failed authentications per address).
    pub address: Option<std::net::SocketAddr>,
}

/// The API's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body.
    pub body: bytes::Bytes,
    /// Its Content-Type.
    pub content_type: String,
    /// Its Location, where it names one.
    pub location: Option<String>,
}

/// A refusal or failure, from the API's problem document.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Refusal {
    /// The status.
    #[serde(default)]
    pub status: u16,
    /// The problem's title.
    #[serde(default)]
    pub title: String,
    /// What went wrong.
    #[serde(default)]
    pub detail: Option<String>,
    /// Each field refused.
    #[serde(default)]
    pub errors: Vec<FieldRefusal>,
}

/// One field refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct FieldRefusal {
    /// Its path in the API's body, e.g. `tenancy.quota.cpu`.
    pub field: String,
    /// Why.
    pub detail: String,
}

impl Answer {
    /// The body as `T` when the call succeeded, else the API's refusal.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Refusal> {
        if !self.status.is_success() {
            return Err(self.refusal());
        }
        serde_json::from_slice(&self.body).map_err(|e| Refusal {
            status: 500,
            title: "The answer could not be read".into(),
            detail: Some(e.to_string()),
            errors: Vec::new(),
        })
    }

    /// The refusal the body describes.
    pub fn refusal(&self) -> Refusal {
        let mut refusal: Refusal = serde_json::from_slice(&self.body).unwrap_or_default();
        refusal.status = self.status.as_u16();
        if refusal.title.is_empty() {
            refusal.title = self.status.canonical_reason().unwrap_or("Failed").to_owned();
        }
        refusal
    }
}

/// Calls `method path` on the API as the signed-in person.
pub async fn call(
    api: &Router,
    via: &Via,
    method: Method,
    path_and_query: &str,
    body: Option<(serde_json::Value, String)>,
    accept: &str,
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(header::AUTHORIZATION, format!("Bearer {}", via.token))
        .header(header::ACCEPT, accept);
    let body = match body {
        Some((json, idempotency_key)) => {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", idempotency_key);
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let mut request = match builder.body(body) {
        Ok(r) => r,
        Err(e) => return failed(&e.to_string()),
    };
    if let Some(address) = via.address {
        request.extensions_mut().insert(axum::extract::ConnectInfo(address));
    }
    let response = match api.clone().oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let header_of =
        |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, content_type, location) =
        (parts.status, header_of(header::CONTENT_TYPE).unwrap_or_default(), header_of(header::LOCATION));
    match body.collect().await {
        Ok(collected) => Answer { status, body: collected.to_bytes(), content_type, location },
        Err(e) => failed(&e.to_string()),
    }
}

fn failed(detail: &str) -> Answer {
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: bytes::Bytes::from(
            serde_json::json!({"title": "The call failed", "detail": detail}).to_string(),
        ),
        content_type: crate::problem::PROBLEM_JSON.into(),
        location: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: bytes::Bytes::from(body.to_owned()),
            content_type: String::new(),
            location: None,
        }
    }

    #[test]
    fn a_problem_document_becomes_a_refusal_naming_its_fields() {
        let refused = answer(
            422,
            r#"{"type":"x","title":"The request is not valid","status":422,
                "errors":[{"field":"tenancy.quota.cpu","detail":"must be a quantity"}]}"#,
        )
        .json::<serde_json::Value>()
        .unwrap_err();
        assert_eq!(refused.status, 422);
        assert_eq!(refused.errors[0].field, "tenancy.quota.cpu");
    }

    #[test]
    fn an_answer_without_a_problem_document_still_says_its_status() {
        let refused = answer(502, "gateway").json::<serde_json::Value>().unwrap_err();
        assert_eq!((refused.status, refused.title.as_str()), (502, "Bad Gateway"));
    }
}

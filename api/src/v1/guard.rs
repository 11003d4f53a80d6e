//! What every `/v1` call passes through before its handler: authentication (once; the handler's
//! [`super::Caller`] reads the identity found here), the Idempotency-Key of a call that changes
//! something (a retry with the same key gets the first answer and changes nothing twice), and the
//! audit record of every such call, whatever its outcome.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::V1;
use super::record::{AuditRecord, KeyState, StoredAnswer};
use crate::auth::{Credential, Identity};
use crate::problem::Problem;

/// The header naming a call's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer given again for a retried key.
pub const REPLAYED: &str = "idempotent-replayed";
/// Bodies of calls are at most this long (the router refuses longer ones first, with 413).
const MAX_BODY: usize = 64 * 1024;
/// Answers kept for a retry are at most this long.
const MAX_ANSWER: usize = 1 << 20;

/// Methods that change something (the others read, or are not served at all: 405).
fn changes(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

fn credential(who: &Identity) -> String {
    match &who.credential {
        Credential::Token => "token".to_owned(),
        Credential::ApiKey(id) => format!("api-key:{id}"),
    }
}

fn problem(status: StatusCode, slug: &str, title: &'static str, detail: &str, path: &str) -> Response {
    Problem::new(status, slug, title)
        .with_detail(detail.to_owned())
        .with_instance(path.to_owned())
        .into_response()
}

/// A key is 1 to 255 visible ASCII characters (a UUID, typically).
fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// SHA-256 of what makes a call the same call: method, path with query, body.
fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(method.as_str().as_bytes());
    ctx.update(b" ");
    ctx.update(path_and_query.as_bytes());
    ctx.update(b"\n");
    ctx.update(body);
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn replay(answer: StoredAnswer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&answer.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&answer.location)
        && !answer.location.is_empty()
    {
        h.insert(header::LOCATION, v);
    }
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// What the guard reaches: the API, and the methods each route serves (from the document).
#[derive(Debug, Clone)]
pub struct Guarded {
    /// The API.
    pub v1: Arc<V1>,
    /// Route template → methods served (upper case).
    pub served: Arc<HashMap<String, Vec<String>>>,
}

/// The methods each path of `api` serves.
pub fn served(api: &utoipa::openapi::OpenApi) -> HashMap<String, Vec<String>> {
    let doc = serde_json::to_value(api).unwrap_or_default();
    let mut out = HashMap::new();
    if let Some(paths) = doc.get("paths").and_then(serde_json::Value::as_object) {
        for (path, item) in paths {
            // The item's operations; its other members (`parameters`, `summary`, `x-...`) are no
            // methods.
            const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
            let methods = item
                .as_object()
                .map(|m| {
                    m.keys().filter(|k| METHODS.contains(&k.as_str())).map(|k| k.to_uppercase()).collect()
                })
                .unwrap_or_default();
            out.insert(path.clone(), methods);
        }
    }
    out
}

/// 405 with `Allow`: the methods the document lists for the path (HEAD wherever GET is).
fn not_allowed(methods: &[String], path: &str) -> Response {
    let mut allow: Vec<&str> = methods.iter().map(String::as_str).collect();
    if allow.contains(&"GET") {
        allow.push("HEAD");
    }
    let mut response = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        &format!("{path} serves {}", allow.join(", ")),
        path,
    );
    if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The middleware.
pub async fn guard(State(g): State<Guarded>, request: Request, next: Next) -> Response {
    let v1 = g.v1;
    let template =
        request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    // HEAD is served wherever GET is (and guarded like it).
    let asked = if request.method() == Method::HEAD { "GET" } else { request.method().as_str() };
    if !g.served.get(&template).is_some_and(|m| m.iter().any(|m| m == asked)) {
        // Only what the OpenAPI document lists is served: a method it does not list for the path
        // is 405 naming those it does, and a route it does not list at all (registered by
        // mistake outside `routes!`) is never run: it would have no authentication,
        // authorisation or audit here.
        let path = request.uri().path().to_owned();
        return match g.served.get(&template) {
            Some(methods) => not_allowed(methods, &path),
            None => {
                tracing::error!(%template, method = %asked, "refused an operation missing from the OpenAPI document");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "undocumented",
                    "Not served",
                    "this operation is missing from the API's document, so it is not served",
                    &path,
                )
            }
        };
    }
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let key = request.headers().get(IDEMPOTENCY_KEY).map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let mut record = AuditRecord {
        id: 0,
        at_ms: now_ms,
        actor: "(unauthenticated)".into(),
        credential: String::new(),
        method: method.to_string(),
        path: path.clone(),
        object: path.clone(),
        status: 0,
        idempotency_key: key.clone().unwrap_or_default(),
    };
    // An address whose calls keep failing to authenticate is refused before any credential is
    // checked (behind a proxy, the proxy's address: every client it carries shares the limit).
    let address = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "(unknown)".to_owned(), |c| c.0.ip().to_string());
    if let Some(wait) = v1.auth_limits.empty(&address, std::time::Instant::now()) {
        v1.auth_failures.with_label_values(&["rate-limited"]).inc();
        return too_many(
            wait,
            "too many calls from this address failed to authenticate; wait as Retry-After says",
            &path,
        );
    }
    // Asking the issuer for its keys counts towards the call's time too.
    let who = match tokio::time::timeout(v1.deadline, v1.auth.authenticate(request.headers(), now_ms)).await {
        Err(_) => return late(v1.deadline, &path),
        Ok(Err(failure)) => {
            v1.auth_failures.with_label_values(&[failure.label()]).inc();
            // An identity provider that cannot be reached is not the client's failure.
            if failure.label() != "unavailable" {
                let _ = v1.auth_limits.take(&address, std::time::Instant::now());
            }
            tracing::info!(reason = %failure, %path, %address, "request not authenticated");
            return failure.into_response();
        }
        Ok(Ok(who)) => who,
    };
    record.actor = who.user.clone();
    record.credential = credential(&who);
    if let Err(wait) = v1.limits.take(&who.user, std::time::Instant::now()) {
        return too_many(
            wait,
            "this client is calling faster than its limit; wait as Retry-After says",
            &path,
        );
    }
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(who.clone());
    if !changes(&method) {
        return within(v1.deadline, &path, next.run(Request::from_parts(parts, body))).await;
    }
    // A call that changes something: its body is read within the deadline, then it runs to its
    // end on a task of its own, so that neither a client that goes away nor an answer later than
    // the deadline stops it halfway, loses its audit record, or leaves its key held.
    let bytes = match tokio::time::timeout(v1.deadline, to_bytes(body, MAX_BODY)).await {
        Err(_) => {
            let response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "deadline",
                "The call took too long",
                "the body did not arrive in time",
                &path,
            );
            return finish(&v1, &method, record, response).await;
        }
        Ok(Err(e)) => {
            let response = if too_long(&e) {
                problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "The body is too large",
                    "bodies are at most 64 KiB",
                    &path,
                )
            } else {
                problem(
                    StatusCode::BAD_REQUEST,
                    "unreadable-body",
                    "The body could not be read",
                    &e.to_string(),
                    &path,
                )
            };
            return finish(&v1, &method, record, response).await;
        }
        Ok(Ok(bytes)) => bytes,
    };
    let request = Request::from_parts(parts, Body::from(bytes.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let deadline = v1.deadline;
    let task_path = path.clone();
    tokio::spawn(async move {
        let response = match key {
            None => next.run(request).await,
            Some(key) if !valid_key(&key) => problem(
                StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                "The Idempotency-Key is not valid",
                "an Idempotency-Key is 1 to 255 visible ASCII characters, for example a UUID",
                &task_path,
            ),
            Some(key) => {
                let path_and_query =
                    request.uri().path_and_query().map_or(task_path.clone(), |p| p.as_str().to_owned());
                let print = fingerprint(&method, &path_and_query, &bytes);
                once(&v1, &who.user, &key, &print, now_ms, &task_path, next, request).await
            }
        };
        let response = finish(&v1, &method, record, response).await;
        // The client may have gone, or been answered at the deadline: the record stands either way.
        let _ = tx.send(response);
    });
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The call failed",
            "the call stopped unexpectedly; its outcome is in the audit record",
            &path,
        ),
        Err(_) => {
            let mut response = late(deadline, &path);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            response
        }
    }
}

/// 429 with Retry-After.
fn too_many(wait: std::time::Duration, detail: &str, path: &str) -> Response {
    let mut response = problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many calls", detail, path);
    if let Ok(v) = HeaderValue::from_str(&(wait.as_secs() + 1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Whether reading a body failed for its length (rather than the client going away).
fn too_long(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// 503: the deadline passed. A call that changes something goes on to its end: its outcome is
/// recorded, and a retry with its Idempotency-Key gets its answer once it has one.
fn late(deadline: std::time::Duration, path: &str) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "deadline",
        "The call took too long",
        &format!(
            "calls are answered within {} seconds; this one was not. A call that changes something is still made to its end and recorded: retry with the same Idempotency-Key to get its answer",
            deadline.as_secs()
        ),
        path,
    )
}

/// Adds a call that changes something to the audit record (unless it was a replay), and answers.
async fn finish(v1: &V1, method: &Method, mut record: AuditRecord, response: Response) -> Response {
    if changes(method) && response.headers().get(REPLAYED).is_none() {
        record.status = response.status().as_u16();
        if let Some(location) = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()) {
            location.clone_into(&mut record.object);
        }
        if let Err(e) = v1.calls.audit(record).await {
            // The change is made; losing its record is an operational failure to alert on.
            v1.audit_failures.inc();
            tracing::error!(error = %e, "a call could not be added to the audit record");
        }
    }
    response
}

/// The call's answer, or 503 once `deadline` has passed (a backend that does not answer holds a
/// reading call no longer than that).
async fn within(
    deadline: std::time::Duration,
    path: &str,
    call: impl std::future::Future<Output = Response>,
) -> Response {
    match tokio::time::timeout(deadline, call).await {
        Ok(response) => response,
        Err(_) => late(deadline, path),
    }
}

/// Problems whose calls are known to have changed nothing (refused before anything was written):
/// their key is freed, so a retry runs the call again. Any other failure's outcome is uncertain
/// (a write whose answer was lost): its answer is kept for the key like a success's, so that a
/// retry can never make the change twice.
const NOTHING_CHANGED: [&str; 3] =
    ["authorisation-unavailable", "idempotency-unavailable", "forecast-unavailable"];

fn nothing_changed(status: StatusCode, body: &[u8]) -> bool {
    status.is_server_error()
        && serde_json::from_slice::<serde_json::Value>(body).ok().is_some_and(|p| {
            let kind = p.get("type").and_then(serde_json::Value::as_str).unwrap_or_default();
            NOTHING_CHANGED.iter().any(|slug| kind.ends_with(&format!("/{slug}")))
        })
}

/// Runs a call that holds an idempotency key at most once.
#[allow(clippy::too_many_arguments)]
async fn once(
    v1: &V1,
    actor: &str,
    key: &str,
    print: &str,
    now_ms: i64,
    path: &str,
    next: Next,
    request: Request,
) -> Response {
    match v1.calls.begin(actor, key, print, now_ms).await {
        Err(e) => {
            tracing::warn!(error = %e, "idempotency keys cannot be read");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "idempotency-unavailable",
                "The call cannot be made safely now",
                "its Idempotency-Key cannot be checked; try again shortly",
                path,
            )
        }
        Ok(KeyState::Answered(answer)) => replay(answer),
        Ok(KeyState::Running) => problem(
            StatusCode::CONFLICT,
            "idempotency-key-in-use",
            "A call with this Idempotency-Key is still running",
            "wait for it to answer, then retry with the same key to get its answer",
            path,
        ),
        Ok(KeyState::Mismatch) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "The Idempotency-Key was used for a different call",
            "use a new key for each different call; a key retries one call",
            path,
        ),
        Ok(KeyState::New) => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let Ok(bytes) = to_bytes(body, MAX_ANSWER).await else {
                let _ = v1.calls.release(actor, key).await;
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "answer-too-large",
                    "The answer could not be kept",
                    "the call was made, but its answer is too large to keep for a retry",
                    path,
                );
            };
            let text = |h| {
                parts
                    .headers
                    .get(h)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            if nothing_changed(parts.status, &bytes) {
                // Refused before anything was written: a retry may run it again.
                let _ = v1.calls.release(actor, key).await;
            } else {
                let answer = StoredAnswer {
                    status: parts.status.as_u16(),
                    content_type: text(header::CONTENT_TYPE),
                    location: text(header::LOCATION),
                    body: bytes.to_vec(),
                };
                if let Err(e) = v1.calls.answer(actor, key, answer).await {
                    tracing::warn!(error = %e, "an answer could not be kept for its Idempotency-Key");
                }
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/v1/x", b"{}");
        assert_eq!(a, fingerprint(&Method::POST, "/v1/x", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/v1/x", b"{ }"));
        assert_ne!(a, fingerprint(&Method::DELETE, "/v1/x", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/v1/y", b"{}"));
    }

    #[test]
    fn only_a_failure_known_to_have_changed_nothing_frees_its_key() {
        let body = |slug: &str| format!("{{\"type\": \"https://commons.dev/problems/{slug}\"}}").into_bytes();
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        assert!(nothing_changed(unavailable, &body("authorisation-unavailable")));
        assert!(!nothing_changed(unavailable, &body("cluster-unavailable")), "a lost answer: kept");
        assert!(!nothing_changed(StatusCode::CREATED, &body("authorisation-unavailable")));
        assert!(!nothing_changed(unavailable, b"not json"));
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(valid_key("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(256)));
    }
}

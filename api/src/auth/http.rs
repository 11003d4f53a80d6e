//! Fetching the identity provider's discovery document and keys: HTTPS with the system's roots
//! (the TLS stack the Kubernetes client uses), plain HTTP only to a loopback address (a provider on
//! the same machine), a timeout and a size limit.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::oidc::Fetch;

/// Keys and discovery documents are small; anything larger is refused.
const MAX_BYTES: usize = 1 << 20;

/// The real fetcher.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<bytes::Bytes>>,
    timeout: Duration,
}

impl HttpFetch {
    /// A fetcher trusting the system's root certificates.
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpFetch { client: Client::builder(TokioExecutor::new()).build(connector), timeout })
    }
}

/// Plain HTTP is allowed to loopback hosts only.
pub fn allowed_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url} is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => Ok(uri),
        (Some("http"), Some("127.0.0.1" | "localhost" | "[::1]" | "::1")) => Ok(uri),
        (Some("http"), _) => {
            Err(format!("{url}: plain HTTP is allowed only to a loopback address; use https"))
        }
        _ => Err(format!("{url} is not an http(s) URL")),
    }
}

impl HttpFetch {
    /// Sends `request` and reads its JSON answer (any status), within the timeout and size limit.
    async fn exchange(
        &self,
        url: &str,
        request: http::Request<Full<bytes::Bytes>>,
    ) -> Result<(http::StatusCode, serde_json::Value), String> {
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let body =
            tokio::time::timeout(self.timeout, Limited::new(response.into_body(), MAX_BYTES).collect())
                .await
                .map_err(|_| format!("{url}: the body did not arrive within {:?}", self.timeout))?
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
        let json =
            serde_json::from_slice(&body).map_err(|e| format!("{url} answered {status}, not JSON: {e}"))?;
        Ok((status, json))
    }
}

impl Fetch for HttpFetch {
    fn get_json(&self, url: &str) -> BoxFuture<'_, Result<serde_json::Value, String>> {
        let url = url.to_owned();
        Box::pin(async move {
            let uri = allowed_url(&url)?;
            let request = http::Request::get(uri)
                .header(http::header::ACCEPT, "application/json")
                .body(Full::default())
                .map_err(|e| format!("{url}: {e}"))?;
            match self.exchange(&url, request).await {
                Ok((status, json)) if status.is_success() => Ok(json),
                Ok((status, _)) => Err(format!("{url} answered {status}")),
                Err(e) => Err(e),
            }
        })
    }

    fn post_form(
        &self,
        url: &str,
        form: Vec<(&'static str, String)>,
    ) -> BoxFuture<'_, Result<(u16, serde_json::Value), String>> {
        let url = url.to_owned();
        Box::pin(async move {
            let uri = allowed_url(&url)?;
            let body = form_urlencoded(&form);
            let request = http::Request::post(uri)
                .header(http::header::ACCEPT, "application/json")
                .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(bytes::Bytes::from(body)))
                .map_err(|e| format!("{url}: {e}"))?;
            self.exchange(&url, request).await.map(|(status, json)| (status.as_u16(), json))
        })
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form_urlencoded(form: &[(&str, String)]) -> String {
    form.iter().map(|(k, v)| format!("{}={}", percent(k), percent(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes all but the unreserved characters (RFC 3986).
pub fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_loopback_only() {
        assert!(allowed_url("https://id.example/realms/x").is_ok());
        assert!(allowed_url("http://127.0.0.1:18180/realms/x").is_ok());
        assert!(allowed_url("http://localhost:8080/x").is_ok());
        assert!(allowed_url("http://id.example/realms/x").unwrap_err().contains("loopback"));
        assert!(allowed_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn forms_are_percent_encoded() {
        assert_eq!(
            form_urlencoded(&[("a", "x y&z=1".into()), ("redirect_uri", "http://h/p?q".into())]),
            "a=x%20y%26z%3D1&redirect_uri=http%3A%2F%2Fh%2Fp%3Fq"
        );
    }
}

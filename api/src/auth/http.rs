//! Fetching the identity provider's discovery document and keys: HTTPS with the system's roots
//! (the TLS stack the Kubernetes client uses), plain HTTP only to a loopback address (a provider on
//! the same machine), a timeout and a size limit.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::oidc::Fetch;

/// Keys and discovery documents are small; anything larger is refused.
const MAX_BYTES: usize = 1 << 20;

/// The real fetcher.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<bytes::Bytes>>,
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

impl Fetch for HttpFetch {
    fn get_json(&self, url: &str) -> BoxFuture<'_, Result<serde_json::Value, String>> {
        let url = url.to_owned();
        Box::pin(async move {
            let uri = allowed_url(&url)?;
            let request = http::Request::get(uri)
                .header(http::header::ACCEPT, "application/json")
                .body(Empty::new())
                .map_err(|e| format!("{url}: {e}"))?;
            let response = tokio::time::timeout(self.timeout, self.client.request(request))
                .await
                .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
                .map_err(|e| format!("{url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{url} answered {}", response.status()));
            }
            let body =
                tokio::time::timeout(self.timeout, Limited::new(response.into_body(), MAX_BYTES).collect())
                    .await
                    .map_err(|_| format!("{url}: the body did not arrive within {:?}", self.timeout))?
                    .map_err(|e| format!("{url}: {e}"))?
                    .to_bytes();
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
        })
    }
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
}

//! How the operator connects to the apiserver: kube's client stack, with a bound on the idle
//! connections it keeps.
//!
//! The client speaks HTTP/1.1, so every request in flight holds a connection of its own (each
//! watch one for its whole life). After a burst — 64 reconciles at once, each writing — the
//! default pool keeps every connection it opened, idle, with its TLS state and read buffers, until
//! the apiserver closes it (the pool has no timer of its own): 101–120 connections after 1,000 new
//! tenancies. Here at most [`IDLE_CONNECTIONS`] idle ones are kept, each for at most [`IDLE_FOR`]:
//! enough to serve a burst without opening a connection a request, and nothing held for long once
//! it is over. The stack is kube's own (its connect, read and write timeouts, retries of 429, 503
//! and 504, authentication with refreshed tokens, extra headers) less its tracing spans.
//! Measured in docs/tenancy.md ("Figures").

use std::time::Duration;

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use kube::client::{Client, ClientBuilder};
use kube::config::Config;
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

/// The idle connections kept for the next requests: half the reconciles that run at once.
pub const IDLE_CONNECTIONS: usize = 32;

/// How long an idle connection is kept (between this and twice this, as the pool checks).
pub const IDLE_FOR: Duration = Duration::from_secs(5);

/// A client for the cluster `config` describes. A configuration kube connects to in ways this
/// stack does not repeat (a proxy, or a client certificate from an exec plugin, which expires) gets
/// kube's own client unchanged.
pub fn client(config: Config) -> Result<Client, kube::Error> {
    if !bounded(&config) {
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let mut connector = TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let pool = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_FOR)
        .pool_max_idle_per_host(IDLE_CONNECTIONS)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.default_retry.then(|| RetryLayer::new(RetryPolicy::server_retry())))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(pool);
    Ok(ClientBuilder::new(service, config.default_namespace).build())
}

/// Whether this stack connects the way kube's own would: no proxy, and no client certificate
/// from an exec plugin.
fn bounded(config: &Config) -> bool {
    let exec = config.auth_info.exec.is_some();
    config.proxy_url.is_none() && !exec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxy: Option<&str>, exec: bool) -> Config {
        let mut config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        config.proxy_url = proxy.map(|p| p.parse().unwrap());
        if exec {
            let exec = serde_json::json!({"command": "credential-helper", "provideClusterInfo": false});
            config.auth_info.exec = Some(serde_json::from_value(exec).unwrap());
        }
        config
    }

    #[test]
    fn only_a_direct_connection_gets_the_bounded_pool() {
        for (proxy, exec, expected) in [
            (None, false, true),
            (Some("http://proxy.example:3128"), false, false),
            (Some("socks5://proxy.example:1080"), false, false),
            (None, true, false),
        ] {
            assert_eq!(bounded(&config(proxy, exec)), expected, "proxy {proxy:?}, exec {exec}");
        }
    }

    #[tokio::test]
    async fn a_direct_connection_builds_a_client() {
        let client = client(config(None, false)).unwrap();
        assert_eq!(client.default_namespace(), "default");
    }
}

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
/// stack does not repeat (a proxy; an exec plugin, whose client certificate expires with the
/// client) gets kube's own client unchanged.
pub fn client(config: Config) -> Result<Client, kube::Error> {
    if !bounded(&config) {
        return Client::try_from(config);
    }
    pooled(config, IDLE_CONNECTIONS, IDLE_FOR)
}

/// kube's stack on a pool that keeps at most `idle` idle connections, each for at most `idle_for`.
fn pooled(config: Config, idle: usize, idle_for: Duration) -> Result<Client, kube::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let mut connector = TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let pool = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(idle_for)
        .pool_max_idle_per_host(idle)
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

/// Whether this stack connects the way kube's own would: no proxy and no exec plugin (the
/// operator in its pod has neither: a ServiceAccount token, refreshed by the auth layer).
fn bounded(config: &Config) -> bool {
    let exec = config.auth_info.exec.is_some();
    config.proxy_url.is_none() && !exec
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// A local HTTP server that answers only once `burst` requests are in flight at once (so each
    /// holds a connection of its own), counting the connections open to it.
    async fn server(burst: usize) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(burst));
        let counted = open.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (open, barrier) = (counted.clone(), barrier.clone());
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let answer = hyper::service::service_fn(move |_req| {
                        let barrier = barrier.clone();
                        async move {
                            barrier.wait().await;
                            Ok::<_, std::convert::Infallible>(hyper::Response::new("{}".to_owned()))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, answer).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (url, open)
    }

    async fn burst(client: &Client, requests: usize) {
        let sent =
            (0..requests).map(|_| client.request_text(http::Request::get("/").body(Vec::new()).unwrap()));
        for answer in futures::future::join_all(sent).await {
            assert_eq!(answer.unwrap(), "{}");
        }
    }

    /// Waits (at most 5 s) until `open` is `expected`, and says whether it came to that.
    async fn comes_to(open: &AtomicUsize, expected: usize) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while open.load(Ordering::SeqCst) != expected {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    #[tokio::test]
    async fn after_a_burst_at_most_the_bound_stays_idle() {
        let (url, open) = server(20).await;
        let client = pooled(Config::new(url.parse().unwrap()), 4, Duration::from_secs(60)).unwrap();
        burst(&client, 20).await;
        assert!(comes_to(&open, 4).await, "20 connections served the burst; 4 stay idle, not {open:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(open.load(Ordering::SeqCst), 4, "the 4 stay while their time lasts");
        // And the next burst is served as well.
        burst(&client, 20).await;
    }

    #[tokio::test]
    async fn idle_connections_are_closed_once_their_time_is_up() {
        let (url, open) = server(20).await;
        let client = pooled(Config::new(url.parse().unwrap()), 4, Duration::from_millis(200)).unwrap();
        burst(&client, 20).await;
        assert!(comes_to(&open, 0).await, "none stay idle past their time, not {open:?}");
    }

    #[tokio::test]
    async fn kubes_own_pool_keeps_every_connection_of_a_burst() {
        // What the bound is for: the same burst through kube's own client leaves all 20 open.
        let (url, open) = server(20).await;
        let client = Client::try_from(Config::new(url.parse().unwrap())).unwrap();
        burst(&client, 20).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(open.load(Ordering::SeqCst), 20);
    }
}

//! Serves the API's router over plain HTTP with limits a slow or idle client cannot outwait: a
//! request's headers must arrive within [`HEADER_TIMEOUT`] (so a client that opens connections
//! and trickles its headers, or leaves a kept-alive connection idle, holds nothing for long); an
//! HTTP/2 peer that stops answering pings is closed. The body of a call has the API's own deadline
//! (`--api-deadline-seconds`, in the guard). Each request carries its peer's address as axum's
//! `ConnectInfo`, which the per-address limits read. On shutdown no connection is accepted, each
//! open one finishes the call it is serving, and after [`DRAIN`] the rest are dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a client has to send a request's headers, counted from the first byte of the request
/// or, on a kept-alive connection, from the end of the previous answer.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long calls in flight may take to finish once shutdown began.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(HEADER_TIMEOUT);
    let http = Arc::new(http);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "api: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service =
                TowerToHyperService::new(app.map_request(move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    request
                }));
            let connection = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "api: connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(seconds = DRAIN.as_secs(), "api: calls still open after the drain were dropped");
    }
}

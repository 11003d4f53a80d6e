//! Serves the API's router over plain HTTP/1.1 with limits a slow or idle client cannot outwait:
//! from the moment a connection opens, and again after each answer, the next request's headers
//! must arrive within the read timeout (`--api-read-timeout-seconds`), so a client that opens
//! connections and sends nothing, trickles its headers, or leaves a kept-alive connection idle
//! holds nothing for long. HTTP/1.1 only: no protocol sniffing or HTTP/2 prior knowledge, whose
//! first bytes no timer covers. The body of a call has the API's own deadline
//! (`--api-deadline-seconds`, in the guard). Each request carries its peer's address as axum's
//! `ConnectInfo`, which the per-address limits read. On shutdown the listener is closed at once,
//! each open connection finishes the call it is serving, and those still open after the drain
//! are closed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How the server treats its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client has to send a request's headers, counted from the connection's opening
    /// or the end of the previous answer (so also how long a kept-alive connection may idle).
    pub read_timeout: Duration,
    /// How long calls in flight may take to finish once shutdown began.
    pub drain: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.read_timeout);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Connections that ended are reaped, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
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
        let service =
            TowerToHyperService::new(app.clone().map_request(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                request
            }));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "api: connection ended with an error");
            }
        });
    }
    // No new connection is taken (the kernel refuses them from now on).
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            seconds = limits.drain.as_secs(),
            "api: connections still open after the drain are closed"
        );
    }
    connections.abort_all();
}

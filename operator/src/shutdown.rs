//! The process's stop signal, shared by everything that runs until Commons stops.

use tokio::sync::watch;

/// Resolves once `true` is sent.
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

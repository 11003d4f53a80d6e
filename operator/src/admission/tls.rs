//! Serving the webhook over HTTPS: the apiserver only calls webhooks over TLS.
//!
//! The certificate directory has the layout of a `kubernetes.io/tls` Secret as cert-manager
//! writes it: `tls.crt` (the serving chain), `tls.key` and `ca.crt` (the CA the apiserver must
//! trust, put into the webhook's `caBundle`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// The serving certificate, its key and the CA bundle, read from a directory.
#[derive(Clone)]
pub struct Certificates {
    /// The serving chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// The CA bundle (PEM) the apiserver trusts the chain with.
    pub ca_pem: Vec<u8>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("chain", &self.chain.len()).finish_non_exhaustive()
    }
}

fn read(path: PathBuf) -> Result<Vec<u8>> {
    std::fs::read(&path).map_err(|source| Error::Io { action: "cannot read", path, source })
}

fn bad(path: &Path, why: String) -> Error {
    Error::Certificate { path: path.to_path_buf(), reason: why }
}

/// Reads `tls.crt`, `tls.key` and `ca.crt` from `dir`.
pub fn load(dir: &Path) -> Result<Certificates> {
    let crt = dir.join("tls.crt");
    let chain = CertificateDer::pem_slice_iter(&read(crt.clone())?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&crt, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(&crt, "no PEM certificate in the file".into()));
    }
    let key_path = dir.join("tls.key");
    let key =
        PrivateKeyDer::from_pem_slice(&read(key_path.clone())?).map_err(|e| bad(&key_path, e.to_string()))?;
    let ca_path = dir.join("ca.crt");
    let ca_pem = read(ca_path.clone())?;
    if CertificateDer::pem_slice_iter(&ca_pem).next().is_none() {
        return Err(bad(&ca_path, "no PEM certificate in the file".into()));
    }
    Ok(Certificates { chain, key: Arc::new(key), ca_pem })
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr: addr.to_string(), source })
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    certs: &Certificates,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs.chain.clone(), certs.key.clone_key())
        .map_err(|e| Error::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the quota admission webhook over TLS");
    }
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "webhook: connection ended with an error");
            }
        });
    }
}

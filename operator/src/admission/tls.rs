//! Serving the webhook over HTTPS: the apiserver only calls webhooks over TLS.
//!
//! The certificate directory has the layout of a `kubernetes.io/tls` Secret as cert-manager
//! writes it: `tls.crt` (the serving chain), `tls.key` and `ca.crt` (the CA the apiserver must
//! trust, put into the webhook's `caBundle`).
//!
//! The files are read again every [`RELOAD_EVERY`]: a rotated certificate (cert-manager renews
//! before expiry, and a mounted Secret changes in place) is served from the next handshake on,
//! without a restart. A half-written set (a certificate whose key is not there yet) is not
//! served; the previous one stays until the set is whole.
//!
//! Only the apiserver may call the webhook: a client must present a certificate signed by the CA
//! given with `--webhook-client-ca` (the apiserver presents one when its admission configuration
//! names it, see docs/tenancy.md). Anyone else is refused during the TLS handshake, before a
//! request is read. A handshake, a request's headers and its body each have [`READ_TIMEOUT`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// How often the certificate directory is read again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// How long a client has to complete the TLS handshake, to send a request's headers, and to
/// send its body (the apiserver's own webhook timeout is 10 s).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Which clients the webhook serves.
#[derive(Clone)]
pub enum Clients {
    /// Only those presenting a certificate signed by one of these CAs (read from `path`).
    SignedBy {
        /// The file the CAs were read from.
        path: PathBuf,
        /// The CAs.
        roots: Arc<rustls::RootCertStore>,
    },
    /// Any client: only where the apiserver cannot be given a client certificate (some managed
    /// clusters); the port must then be reachable from the control plane alone.
    Anyone,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clients::SignedBy { path, roots } => {
                write!(f, "SignedBy({}, {} CAs)", path.display(), roots.len())
            }
            Clients::Anyone => f.write_str("Anyone"),
        }
    }
}

impl Clients {
    /// Clients with a certificate signed by a CA in the PEM file `path`.
    pub fn signed_by(path: &Path) -> Result<Clients> {
        let pem = read(path.to_path_buf())?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(path, e.to_string()))?;
            roots.add(cert).map_err(|e| bad(path, format!("not a usable CA certificate ({e})")))?;
        }
        if roots.is_empty() {
            return Err(bad(path, "no PEM certificate in the file".into()));
        }
        Ok(Clients::SignedBy { path: path.to_path_buf(), roots: Arc::new(roots) })
    }
}

/// The serving certificate, its key and the CA bundle, read from a directory.
#[derive(Clone)]
pub struct Certificates {
    /// The serving chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// The CA bundle (PEM) the apiserver trusts the chain with.
    pub ca_pem: Vec<u8>,
    /// The three files as read, to tell when they change.
    files: Vec<Vec<u8>>,
}

impl Certificates {
    /// Whether the files in `dir` differ from these (or cannot be read).
    pub fn changed_in(&self, dir: &Path) -> bool {
        FILES.iter().map(|f| std::fs::read(dir.join(f)).ok()).ne(self.files.iter().map(|f| Some(f.clone())))
    }

    fn certified(&self) -> Result<CertifiedKey> {
        CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider())
            .map_err(|e| Error::Tls(format!("the key does not belong to the certificate ({e})")))
    }
}

const FILES: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The certificate served now; [`Serving::swap`] replaces it for the handshakes that follow.
#[derive(Debug)]
pub struct Serving {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Serving {
    /// Serves `certs`, if the key belongs to the certificate.
    pub fn new(certs: &Certificates) -> Result<Serving> {
        Ok(Serving { current: RwLock::new(Arc::new(certs.certified()?)) })
    }

    /// Serves `certs` from now on, if the key belongs to the certificate; otherwise keeps the
    /// current one and says why.
    pub fn swap(&self, certs: &Certificates) -> Result<()> {
        let next = Arc::new(certs.certified()?);
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }

    /// The end-entity certificate served now.
    pub fn served(&self) -> Option<CertificateDer<'static>> {
        let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        current.cert.first().cloned()
    }
}

impl ResolvesServerCert for Serving {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
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

/// Reads `tls.crt`, `tls.key` and `ca.crt` from `dir`, and checks that the key belongs to the
/// certificate.
pub fn load(dir: &Path) -> Result<Certificates> {
    let crt = dir.join("tls.crt");
    let crt_pem = read(crt.clone())?;
    let chain = CertificateDer::pem_slice_iter(&crt_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&crt, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(&crt, "no PEM certificate in the file".into()));
    }
    let key_path = dir.join("tls.key");
    let key_pem = read(key_path.clone())?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad(&key_path, e.to_string()))?;
    let ca_path = dir.join("ca.crt");
    let ca_pem = read(ca_path.clone())?;
    if CertificateDer::pem_slice_iter(&ca_pem).next().is_none() {
        return Err(bad(&ca_path, "no PEM certificate in the file".into()));
    }
    let certs = Certificates {
        chain,
        key: Arc::new(key),
        ca_pem: ca_pem.clone(),
        files: vec![crt_pem, key_pem, ca_pem],
    };
    CertifiedKey::from_der(certs.chain.clone(), certs.key.clone_key(), &provider())
        .map_err(|e| bad(&key_path, format!("not the key of tls.crt ({e})")))?;
    Ok(certs)
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr: addr.to_string(), source })
}

/// The TLS configuration: the certificate `serving` holds at each handshake, and a client
/// certificate required when `clients` says so.
pub fn server_config(serving: Arc<Serving>, clients: &Clients) -> Result<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match clients {
        Clients::SignedBy { roots, .. } => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.clone(),
                Arc::new(provider()),
            )
            .build()
            .map_err(|e| Error::Tls(format!("the client CA cannot verify certificates ({e})")))?;
            builder.with_client_cert_verifier(verifier)
        }
        Clients::Anyone => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(serving);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `app` over TLS on `listener` with `config`, until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: rustls::ServerConfig,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1().timer(TokioTimer::new()).header_read_timeout(READ_TIMEOUT);
    // A connection whose peer stopped answering is closed rather than held.
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(READ_TIMEOUT);
    let http = Arc::new(http);
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
        let http = http.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(READ_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "webhook: TLS handshake timed out");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = http.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "webhook: connection ended with an error");
            }
        });
    }
}

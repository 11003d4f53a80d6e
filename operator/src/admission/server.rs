//! Serving the webhook: the HTTP handler, registration with the apiserver, and certificate
//! rotation.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use super::{Admission, registration, tls};
use crate::error::Result;

/// The largest AdmissionReview read: the object and its previous version, each at most what the
/// apiserver stores (about 1.5 MiB), with room to spare.
const MAX_REVIEW: usize = 8 << 20;

/// Reads one AdmissionReview (its body within [`tls::READ_TIMEOUT`]) and answers it.
pub(super) async fn handle(State(admission): State<Arc<Admission>>, request: Request) -> Response {
    // A connection the apiserver keeps open to a stopping replica (or a former leader) gets an
    // error, which the apiserver treats as a refusal (failurePolicy: Fail): never an admission.
    if admission.stopping() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Commons is stopping: this replica decides no more reviews",
        )
            .into_response();
    }
    let body = match tokio::time::timeout(tls::READ_TIMEOUT, to_bytes(request.into_body(), MAX_REVIEW)).await
    {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return (StatusCode::BAD_REQUEST, format!("cannot read the request: {e}")).into_response();
        }
        Err(_) => {
            let why = format!("the request body did not arrive within {}s", tls::READ_TIMEOUT.as_secs());
            return (StatusCode::REQUEST_TIMEOUT, why).into_response();
        }
    };
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("the body is not an AdmissionReview: {e}"))
                .into_response();
        }
    };
    let response = match review.try_into() {
        Ok(req) => {
            let req: AdmissionRequest<DynamicObject> = req;
            admission.review(&req).await
        }
        Err(_) => AdmissionResponse::invalid("the AdmissionReview has no request"),
    };
    Json(response.into_review()).into_response()
}

/// How the webhook is served.
#[derive(Debug)]
pub struct Serve {
    /// Where it listens.
    pub listen: std::net::SocketAddr,
    /// The directory with `tls.crt`, `tls.key` and `ca.crt`, read again as they rotate.
    pub cert_dir: std::path::PathBuf,
    /// How the apiserver reaches it.
    pub endpoint: registration::Endpoint,
    /// Who may call it.
    pub clients: tls::Clients,
    /// Counts the webhook configuration put back after an edit or a deletion.
    pub repairs: prometheus::IntCounterVec,
}

/// Registers the webhook (and keeps its configuration as registered), and serves it over TLS
/// until `stop`, taking up a rotated certificate from `cert_dir` as it appears.
pub async fn serve(
    admission: Arc<Admission>,
    settings: Serve,
    certs: tls::Certificates,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let Serve { listen, cert_dir, endpoint, clients, repairs } = settings;
    let serving = Arc::new(tls::Serving::new(&certs)?);
    publish_expiry(&admission, &serving);
    let config = tls::server_config(serving.clone(), &clients)?;
    let listener = tls::bind(listen).await?;
    if let tls::Clients::Anyone = clients {
        tracing::warn!(
            "the quota webhook serves any client (--webhook-insecure-any-client): only the apiserver must be able to reach {listen}"
        );
    }
    // Listening before registering, so the apiserver never calls a webhook that is not there.
    let registration = registration::Registration::new(admission.client.clone(), endpoint);
    registration.install(&certs.ca_pem).await?;
    crate::keeper::keep(
        &admission.watches,
        {
            let registration = registration.clone();
            Arc::new(move || registration.desired())
        },
        registration::ours,
        repairs,
        stop.clone(),
    );
    let rotation = {
        let (admission, serving) = (admission.clone(), serving.clone());
        async move {
            let mut ticker = tokio::time::interval(tls::RELOAD_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut current = certs;
            let mut refused: Option<String> = None;
            loop {
                ticker.tick().await;
                if !current.changed_in(&cert_dir) {
                    continue;
                }
                match rotate(&registration, &serving, &current, &cert_dir).await {
                    Ok(next) => {
                        admission.metrics.certificates.with_label_values(&["reloaded"]).inc();
                        publish_expiry(&admission, &serving);
                        tracing::info!(dir = %cert_dir.display(), "serving the rotated webhook certificate");
                        current = next;
                        refused = None;
                    }
                    Err(e) => {
                        admission.metrics.certificates.with_label_values(&["refused"]).inc();
                        // Once per distinct problem: a half-written set is normal for a moment.
                        let why = e.to_string();
                        if refused.as_ref() != Some(&why) {
                            tracing::warn!(dir = %cert_dir.display(), error = %why, "keeping the current webhook certificate");
                            refused = Some(why);
                        }
                    }
                }
            }
        }
    };
    let rotation = tokio::spawn(rotation);
    let served = tls::serve(listener, config, admission.router(), crate::shutdown::stopped(stop)).await;
    rotation.abort();
    served
}

/// Publishes when the certificate served now stops being valid (for the alert in
/// docs/operations.md); one that cannot be read is said in the log and leaves the gauge as it was.
fn publish_expiry(admission: &Admission, serving: &tls::Serving) {
    match serving.served().as_deref().and_then(super::cert_expiry::not_after) {
        Some(at) => admission.metrics.certificate_expiry.set(at),
        None => tracing::warn!("the served webhook certificate's expiry cannot be read"),
    }
}

/// How long the apiserver is given to take up a new `caBundle` before the certificate it must
/// verify is served.
const CA_TAKES_EFFECT: Duration = Duration::from_secs(2);

/// Takes up the certificate files in `dir`. When their CA changed, the apiserver is first told
/// to trust it alongside the previous CA (which signed what is served until now), the new
/// certificate is served once that has taken effect, and then the previous CA is dropped.
async fn rotate(
    registration: &registration::Registration,
    serving: &tls::Serving,
    current: &tls::Certificates,
    dir: &std::path::Path,
) -> Result<tls::Certificates> {
    let next = tls::load(dir)?;
    if next.ca_pem != current.ca_pem {
        let mut bundle = next.ca_pem.clone();
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(&current.ca_pem);
        registration.install(&bundle).await?;
        tokio::time::sleep(CA_TAKES_EFFECT).await;
        serving.swap(&next)?;
        registration.install(&next.ca_pem).await?;
    } else {
        serving.swap(&next)?;
    }
    Ok(next)
}

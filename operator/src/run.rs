//! `commons run`: the operator and the API in one process.

use std::net::SocketAddr;

use commons_api::{AppState, Readiness};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::leading::Leader;
use crate::metrics::Metrics;
use crate::readiness;
use crate::{admission, hosted, segment, subscription, tenancy};

/// Settings for `commons run`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the API (health, readiness, metrics) listens.
    pub listen: SocketAddr,
    /// How often unchanged objects are reconciled again.
    pub resync: std::time::Duration,
    /// The quota admission webhook, when it is served.
    pub webhook: Option<WebhookSettings>,
    /// What applies to every tenancy's policy (the webhook enforces it).
    pub policy: admission::Settings,
    /// The cluster's pod and service networks (`--cluster-networks`).
    pub cluster_networks: Vec<crate::reachability::Cidr>,
    /// The ledger's URL (`--ledger`).
    pub ledger: String,
    /// Days after a month ends that it is closed (`--close-after-days`).
    pub close_after_days: u32,
    /// How often each tenancy's spend is weighed against its budget (`--budget-seconds`).
    pub budget_every: std::time::Duration,
    /// The REST API's identity provider and authorisation cache.
    pub api: crate::api_settings::ApiFlags,
    /// Leader election (`--leader-elect`); `None`: this replica always leads.
    pub leader: Option<crate::leadership::Settings>,
}

/// Settings for the quota admission webhook.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Where the webhook listens (HTTPS).
    pub listen: SocketAddr,
    /// The directory with `tls.crt`, `tls.key` and `ca.crt`.
    pub cert_dir: std::path::PathBuf,
    /// How the apiserver reaches the webhook.
    pub endpoint: crate::admission::registration::Endpoint,
    /// The CA of the client certificate the apiserver presents; `None` serves any client.
    pub client_ca: Option<std::path::PathBuf>,
}

/// Connects to the cluster, starts the readiness checker and the controllers, and serves the API
/// until SIGINT or SIGTERM, then lets in-flight reconciles finish.
pub async fn run(settings: Settings) -> Result<()> {
    let config = kube::Config::infer().await.map_err(|e| Error::KubeConfig(kube::Error::InferConfig(e)))?;
    let client = crate::connection::client(config).map_err(Error::KubeConfig)?;
    let oidc = settings.api.oidc()?;
    let portal_issuer = settings.api.oidc_issuer.clone();
    let request_policy = settings.api.policy()?;
    let metrics = Metrics::new()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // With leader election, this replica serves the API and readiness at once, and runs the
    // controllers, the meter, the keepers and the webhook only while it holds the Lease (given up
    // once they have stopped).
    let (finished_tx, finished_rx) = watch::channel(false);
    // Without leader election this replica leads for its whole life: the sender lives as long.
    let mut leads_always: Option<watch::Sender<bool>> = None;
    let (leading, campaign) = match &settings.leader {
        Some(leader) => {
            let (leading, task) = crate::leadership::campaign(
                client.clone(),
                leader.clone(),
                metrics.leading.clone(),
                finished_rx,
            );
            (leading, Some(task))
        }
        None => {
            metrics.leading.set(1);
            let (always, leading) = watch::channel(true);
            leads_always = Some(always);
            (leading, None)
        }
    };
    let watches = crate::watch::Watches::start_gated(client.clone(), leading.clone());
    // Certificates are read before anything starts, so a bad file stops `commons` at once.
    let webhook_certs = match &settings.webhook {
        Some(w) => Some((
            admission::tls::load(&w.cert_dir)?,
            match &w.client_ca {
                Some(path) => admission::tls::Clients::signed_by(path)?,
                None => admission::tls::Clients::Anyone,
            },
        )),
        None => None,
    };
    let (tx, rx) = watch::channel(Readiness::default());
    // A container restarted in a Pod that led keeps its labels: off, before this one can be Ready.
    if let Some((namespace, pod)) =
        settings.webhook.as_ref().and_then(|w| admission::route::own_pod(&w.endpoint))
    {
        let call = admission::route::not_here(&client, &namespace, &pod);
        match tokio::time::timeout(std::time::Duration::from_secs(10), call).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot take the webhook label off this replica's Pod"),
            Err(_) => tracing::warn!("taking the webhook label off this replica's Pod took over 10s"),
        }
    }
    let (demand, demand_triggers) = tenancy::demand::Demand::new();
    let demand = std::sync::Arc::new(demand);
    // One watch and one store per kind the controllers and the webhook share: each subscribes
    // before the watches start, so none misses the first list.
    let mut shared = crate::reflectors::Shared::new();
    let segment_inputs = segment::Inputs::subscribe(&mut shared);
    let budgets = std::sync::Arc::new(crate::metering::budgets::Budgets::default());
    let (spend_tx, spend_rx) = futures::channel::mpsc::unbounded();
    let spend_tx = only_while_leading(spend_tx, leading.clone());
    let tenancy_inputs =
        tenancy::Inputs::subscribe(&mut shared, &watches, demand_triggers, budgets.clone(), spend_rx);
    // One Event recorder for the process (it also deduplicates repeated Events).
    let recorder = crate::events::recorder(client.clone());
    let hosted_inputs = hosted::Inputs::subscribe(
        &mut shared,
        &watches,
        client.clone(),
        recorder.clone(),
        metrics.clone(),
        settings.resync,
    );
    let subscription_inputs = subscription::Inputs::subscribe(
        &mut shared,
        client.clone(),
        recorder.clone(),
        metrics.clone(),
        settings.resync,
    );
    let api_policy = request_policy.clone();
    let request_inputs = crate::request::Inputs::subscribe(
        &mut shared,
        client.clone(),
        recorder.clone(),
        metrics.clone(),
        (settings.resync, request_policy, settings.api.requests_namespace.clone()),
    );
    // The ledger's URL is checked now; the database itself is waited for by the meter.
    let ledger = crate::ledger::Ledger::open(&settings.ledger)?;
    let portal_pages = settings.api.portal.portal(
        portal_issuer.as_deref(),
        std::sync::Arc::new(crate::ledger::sessions::LedgerSessions(ledger.clone())),
    )?;
    let meter_lookups = crate::metering::meter::Lookups {
        hosted: shared.hosted.store(),
        namespaces: shared.namespaces.store(),
        tenancies: shared.tenancies.store(),
    };
    let meter_tenancy_changes = {
        use futures::StreamExt;
        shared.tenancies.subscribe_when(crate::watch::spec_changed).boxed()
    };
    let admission = match settings.webhook.is_some() {
        true => Some(admission::Admission::start(
            &watches,
            &mut shared,
            admission::Metrics::new(&metrics.registry)?,
            demand.clone(),
            settings.policy.clone(),
            stop_rx.clone(),
        )),
        false => None,
    };
    let api_tenancies = shared.tenancies.store();
    let api_requests = shared.requests.store();
    let (report_subscriptions, report_namespaces, report_tenancies) =
        (shared.subscriptions.store(), shared.namespaces.store(), shared.tenancies.store());
    let stored_tariff =
        crate::report_cmd::StoredTariff { cards: shared.rate_cards.store(), vat: shared.vat_rates.store() };
    let shared_tenancies_for_policy = shared.tenancies.store();
    let api_catalogue = crate::api_catalogue::StoreCatalogue {
        hosted: shared.hosted.store(),
        subscriptions: shared.subscriptions.store(),
        namespaces: shared.namespaces.store(),
        tenancies: shared.tenancies.store(),
    };
    shared.start(&watches);
    let mut local_checks: Vec<(&'static str, readiness::LocalCheck)> = Vec::new();
    if let Some(adm) = &admission {
        let adm = adm.clone();
        local_checks.push(("admission", std::sync::Arc::new(move || adm.ready())));
    }
    let v1 = std::sync::Arc::new(commons_api::v1::V1 {
        auth: commons_api::auth::Authenticator {
            oidc,
            keys: Some(std::sync::Arc::new(crate::ledger::keys::LedgerKeys(ledger.clone()))),
        },
        authz: std::sync::Arc::new(commons_api::authz::Rbac::new(
            client.clone(),
            std::time::Duration::from_secs(settings.api.authz_cache_seconds),
        )),
        tenancies: api_tenancies,
        spend: std::sync::Arc::new(crate::api_settings::BudgetSpend(budgets.clone())),
        auth_failures: commons_api::v1::V1::auth_failures(&metrics.registry)?,
        requests: api_requests,
        requests_namespace: settings.api.requests_namespace.clone(),
        forecaster: std::sync::Arc::new(crate::api_settings::ClusterForecast(stored_tariff.clone())),
        policy: {
            let known = shared_tenancies_for_policy;
            std::sync::Arc::new(move |t| {
                let (approved_by, reasons) =
                    crate::request::policy_view(&api_policy, t, &known.state(), jiff::Timestamp::now());
                commons_api::v1::PolicyView { approved_by, reasons }
            })
        },
        usage: std::sync::Arc::new(crate::api_usage::LedgerUsage {
            ledger: ledger.clone(),
            tariff: stored_tariff.clone(),
        }),
        reports: std::sync::Arc::new(crate::api_reports::LedgerReports {
            ledger: ledger.clone(),
            subscriptions: report_subscriptions,
            namespaces: report_namespaces,
            tenancies: report_tenancies,
            tariff: stored_tariff,
        }),
        calls: std::sync::Arc::new(crate::ledger::calls::LedgerCalls(ledger.clone())),
        catalogue: std::sync::Arc::new(api_catalogue),
        limits: commons_api::v1::limits::RateLimiter::new(settings.api.api_rate, settings.api.api_burst),
        auth_limits: commons_api::v1::limits::RateLimiter::new(
            commons_api::v1::limits::FAILED_PER_SECOND,
            commons_api::v1::limits::FAILED_BURST,
        ),
        deadline: std::time::Duration::from_secs(settings.api.api_deadline_seconds.max(1)),
        audit_failures: commons_api::v1::V1::audit_failures(&metrics.registry)?,
        client: Some(client.clone()),
    });
    if let Err(e) =
        crate::api_settings::ensure_requests_namespace(&client, &settings.api.requests_namespace).await
    {
        // Requests cannot be made until it exists; everything else runs.
        tracing::warn!(error = %e, "the tenancy requests' namespace cannot be made");
    }
    // Every replica keeps the spend figures the API shows; only the leader's controller hears of
    // their changes.
    let budget_task = tokio::spawn(crate::metering::budgets::run(
        client.clone(),
        ledger.clone(),
        budgets,
        spend_tx,
        (settings.budget_every, crate::metering::budgets::SpendMetrics::new(&metrics.registry)?),
        crate::shutdown::stopped(stop_rx.clone()),
    ));
    // The meter's standing once it runs (on the leader); a follower's readiness does not wait on it.
    let standing: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<crate::metering::health::Standing>>> =
        std::sync::Arc::default();
    let degraded: Vec<(&'static str, readiness::LocalCheck)> = {
        let standing = standing.clone();
        vec![("metering", std::sync::Arc::new(move || standing.get().map_or(Ok(()), |s| s.check())))]
    };
    let checker = tokio::spawn(readiness::run(client.clone(), tx, metrics.clone(), local_checks, degraded));
    let led = Leader {
        client: client.clone(),
        watches,
        metrics: metrics.clone(),
        recorder,
        resync: settings.resync,
        cluster_networks: settings.cluster_networks.clone(),
        close_after_days: settings.close_after_days,
        ledger,
        demand,
        inputs: (segment_inputs, tenancy_inputs, request_inputs, hosted_inputs, subscription_inputs),
        meter: (meter_lookups, meter_tenancy_changes),
        webhook: match (settings.webhook, webhook_certs, admission) {
            (Some(w), Some((certs, clients)), Some(adm)) => Some((
                adm,
                admission::Serve {
                    listen: w.listen,
                    cert_dir: w.cert_dir,
                    endpoint: w.endpoint,
                    clients,
                    repairs: metrics.repairs.clone(),
                },
                certs,
            )),
            _ => None,
        },
        standing,
    };
    let failure: std::sync::Arc<std::sync::OnceLock<String>> = std::sync::Arc::default();
    let leader_task = {
        let (stop_tx, stop_rx, failure) = (stop_tx.clone(), stop_rx.clone(), failure.clone());
        tokio::spawn(led.run(leading, stop_tx, stop_rx, failure))
    };

    let app = commons_api::router(AppState {
        readiness: rx,
        registry: metrics.registry.clone(),
        v1: Some(v1),
        portal: portal_pages,
    });
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| Error::Listen { addr: settings.listen.to_string(), source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr: settings.listen.to_string(), source })?;
    tracing::info!(%local, "serving /v1, /healthz, /readyz and /metrics");
    // Each connection's address (for the per-address limit on failed authentications), and
    // limits a slow or idle client cannot outwait (http_serve.rs).
    let limits = crate::http_serve::Limits {
        read_timeout: std::time::Duration::from_secs(settings.api.api_read_timeout_seconds.max(1)),
        // Every call in flight gets to its deadline's answer before the drain ends.
        drain: std::time::Duration::from_secs(settings.api.api_deadline_seconds.max(1) + 5),
    };
    crate::http_serve::serve(listener, app, limits, {
        let mut stopping = stop_tx.subscribe();
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
            let _ = stop_tx.send(true);
        }
    })
    .await;
    checker.abort();
    let _ = leader_task.await;
    let _ = finished_tx.send(true);
    if let Some(campaign) = campaign {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), campaign).await;
    }
    budget_task.abort();
    drop(leads_always);
    tracing::info!("stopped");
    if let Some(what) = failure.get() {
        return Err(Error::Stopped(what.clone()));
    }
    Ok(())
}

/// A sender that passes messages on only while this replica leads (a follower's controllers do
/// not run, so nothing would read them), dropping them otherwise.
fn only_while_leading<T: Send + 'static>(
    to: futures::channel::mpsc::UnboundedSender<T>,
    leading: watch::Receiver<bool>,
) -> futures::channel::mpsc::UnboundedSender<T> {
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<T>();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(message) = rx.next().await {
            if *leading.borrow() && to.unbounded_send(message).is_err() {
                return;
            }
        }
    });
    tx
}

/// Resolves at SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

//! What only the leading replica runs: the controllers, the meter and the month closer, the keepers
//! of the shared objects, and the quota webhook. Started once this replica leads; stopped when
//! Commons stops. When the lead is lost the process starts itself again in place at once
//! ([`crate::restart`]), as client-go's leader election exits: nothing it runs may overlap the next
//! leader's, and it comes back as a follower. (What the meter had not yet written, the next
//! leader's meter records from the cluster at its start.)

use std::sync::{Arc, OnceLock};

use crate::events::Recorder;
use kube::Client;
use tokio::sync::watch;

use crate::metering::health::Standing;
use crate::metrics::Metrics;
use crate::{admission, hosted, segment, subscription, tenancy};

/// The controllers' inputs, in the order they are started.
pub type Inputs =
    (segment::Inputs, tenancy::Inputs, crate::request::Inputs, hosted::Inputs, subscription::Inputs);

/// Everything the leader runs, ready to start.
pub struct Leader {
    /// The cluster.
    pub client: Client,
    /// The process's watches.
    pub watches: crate::watch::Watches,
    /// The process's metrics.
    pub metrics: Metrics,
    /// The process's Event recorder.
    pub recorder: Recorder,
    /// How often unchanged objects are reconciled again.
    pub resync: std::time::Duration,
    /// The cluster's pod and service networks.
    pub cluster_networks: Vec<crate::reachability::Cidr>,
    /// Days after a month ends that it is closed.
    pub close_after_days: u32,
    /// The ledger.
    pub ledger: crate::ledger::Ledger,
    /// Quota demand, shared by the webhook and the Tenancy controller.
    pub demand: Arc<tenancy::demand::Demand>,
    /// The controllers' inputs.
    pub inputs: Inputs,
    /// What the meter looks up, and the tenancies whose spec changed.
    pub meter:
        (crate::metering::meter::Lookups, futures::stream::BoxStream<'static, Arc<commons_crds::Tenancy>>),
    /// The webhook, when it is served: its decisions, how it is served, its certificates.
    pub webhook: Option<(Arc<admission::Admission>, admission::Serve, admission::tls::Certificates)>,
    /// Where the meter's standing is published for the readiness check.
    pub standing: Arc<std::sync::OnceLock<Arc<Standing>>>,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader").finish_non_exhaustive()
    }
}

impl Leader {
    /// Waits until `leading`, runs everything until `stop`, then lets it finish. If the lead is
    /// lost meanwhile, the process starts again in place at once; if the webhook or the meter fails, `failure`
    /// names it and Commons stops.
    pub async fn run(
        self,
        mut leading: watch::Receiver<bool>,
        stop_tx: watch::Sender<bool>,
        mut stop_rx: watch::Receiver<bool>,
        failure: Arc<OnceLock<String>>,
    ) {
        tokio::select! {
            led = leading.wait_for(|l| *l) => if led.is_err() { return },
            _ = stop_rx.wait_for(|s| *s) => return,
        }
        // From now on a lost lead (or a campaign that ended without a stop) ends this image of the
        // process.
        {
            let (mut leading, stop_rx) = (leading.clone(), stop_rx.clone());
            tokio::spawn(async move {
                let _ = leading.wait_for(|l| !*l).await;
                if !*stop_rx.borrow() {
                    tracing::error!(
                        "lost the lead; starting again in place so that nothing overlaps the next leader"
                    );
                    crate::restart::in_place();
                }
            });
        }
        let Leader {
            client,
            watches,
            metrics,
            recorder,
            resync,
            cluster_networks,
            close_after_days,
            ledger,
            demand,
            inputs: (segment_inputs, tenancy_inputs, request_inputs, hosted_inputs, subscription_inputs),
            meter: (meter_lookups, meter_tenancy_changes),
            webhook,
            standing,
        } = self;
        let stopped = || crate::shutdown::stopped(stop_rx.clone());
        // The ClusterRole every owner is bound to has no owner object: kept by name.
        crate::keeper::keep(
            &watches,
            Arc::new(tenancy::desired::tenant_admin_role),
            |role| role.clone(),
            metrics.repairs.clone(),
            stop_rx.clone(),
        );
        // Deletion protection is enforced by the apiserver itself (CEL), Commons running or not.
        crate::keeper::keep(
            &watches,
            Arc::new(tenancy::protection::policy),
            |policy| policy.clone(),
            metrics.repairs.clone(),
            stop_rx.clone(),
        );
        crate::keeper::keep(
            &watches,
            Arc::new(tenancy::protection::binding),
            |binding| binding.clone(),
            metrics.repairs.clone(),
            stop_rx.clone(),
        );
        let webhook = webhook.map(|(adm, serve, certs)| {
            // Behind a Service (in a cluster): once listening, make this Pod the one it reaches.
            if let Some(own) = admission::route::own_pod(&serve.endpoint) {
                let port = serve.listen.port();
                tokio::spawn(admission::route::keep_serving_here(client.clone(), own, port, stop_rx.clone()));
            }
            let (stop, stop_rx, failure) = (stop_tx.clone(), stop_rx.clone(), failure.clone());
            tokio::spawn(async move {
                if let Err(e) = admission::serve(adm, serve, certs, stop_rx).await {
                    // Without the webhook pods in tenancies cannot be created (it fails closed):
                    // stop, so a supervisor restarts Commons rather than leave it half-working.
                    tracing::error!(error = %e, "the quota admission webhook stopped; shutting down");
                    let _ = failure.set("the quota admission webhook".into());
                    let _ = stop.send(true);
                }
            })
        });
        let closer = tokio::spawn(crate::metering::closer::run(
            client.clone(),
            ledger.clone(),
            close_after_days,
            stopped(),
        ));
        let metering = match crate::metering::runtime::start(
            &watches,
            meter_lookups,
            meter_tenancy_changes,
            ledger,
            &metrics.registry,
            stopped(),
        ) {
            Ok(metering) => metering,
            Err(e) => {
                tracing::error!(error = %e, "the meter cannot start; shutting down");
                let _ = failure.set("the meter".into());
                let _ = stop_tx.send(true);
                return;
            }
        };
        let _ = standing.set(metering.standing.clone());
        let segments = tokio::spawn(segment::run(
            client.clone(),
            segment_inputs,
            metrics.clone(),
            recorder.clone(),
            resync,
            cluster_networks,
            stopped(),
        ));
        let tenancies = tokio::spawn(tenancy::run(
            client.clone(),
            tenancy_inputs,
            metrics.clone(),
            recorder,
            resync,
            demand,
            stopped(),
        ));
        let requests = tokio::spawn(crate::request::run(request_inputs, stopped()));
        let services = tokio::spawn(hosted::run(hosted_inputs, stopped()));
        let subscriptions = tokio::spawn(subscription::run(subscription_inputs, stopped()));
        let rate_cards = {
            let (watches, stop) = (watches.clone(), stopped());
            tokio::spawn(async move { crate::ratecard::run(&watches, client, metrics, resync, stop).await })
        };
        let _ = stop_rx.wait_for(|s| *s).await;
        if let Some(w) = webhook {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), w).await;
        }
        let controllers = futures::future::join(
            futures::future::join5(tenancies, segments, services, subscriptions, rate_cards),
            requests,
        );
        if tokio::time::timeout(std::time::Duration::from_secs(20), controllers).await.is_err() {
            tracing::warn!("controllers did not stop within 20s");
        }
        // The meter stops with the controllers; the writer then writes what is left.
        metering.stopped().await;
        closer.abort();
    }
}

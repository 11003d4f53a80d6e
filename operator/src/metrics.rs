//! The operator's Prometheus metrics, registered in one registry that `/metrics` renders.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::error::Result;

/// Metrics every controller shares, labelled by controller.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// How long reconciles take, by controller.
    pub reconcile_duration: HistogramVec,
    /// Failed reconciles, by controller and error reason.
    pub reconcile_errors: IntCounterVec,
    /// 1 while every readiness check passes.
    pub ready: IntGauge,
    /// Tenancies by condition type and status.
    pub tenancies: IntGaugeVec,
    /// Objects Commons keeps by name (see `keeper`) put back after an edit or a deletion, by kind.
    pub repairs: IntCounterVec,
    /// 1 while this replica leads (always, without leader election).
    pub leading: IntGauge,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self> {
        let registry = Registry::new_custom(Some("commons".into()), None)?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "How long reconciles take.")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["controller"],
        )?;
        let reconcile_errors = IntCounterVec::new(
            Opts::new("reconcile_errors_total", "Failed reconciles, by error reason."),
            &["controller", "reason"],
        )?;
        let ready = IntGauge::new("ready", "1 while every readiness check passes, else 0.")?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(reconcile_errors.clone()))?;
        let tenancies = IntGaugeVec::new(
            Opts::new("tenancies", "Tenancies by condition type and status."),
            &["condition", "status"],
        )?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(tenancies.clone()))?;
        let repairs = IntCounterVec::new(
            Opts::new(
                "kept_object_repairs_total",
                "Objects Commons keeps put back after an edit or a deletion.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(repairs.clone()))?;
        let leading = IntGauge::new(
            "leading",
            "1 while this replica holds the leader Lease (runs the controllers, the meter and the webhook).",
        )?;
        registry.register(Box::new(leading.clone()))?;
        registry.register(Box::new(crate::apply::WRITES.clone()))?;
        registry.register(Box::new(crate::watch::RESTARTS.clone()))?;
        let process = prometheus::process_collector::ProcessCollector::for_self();
        let _ = registry.register(Box::new(process));
        Ok(Metrics { registry, reconcile_duration, reconcile_errors, ready, tenancies, repairs, leading })
    }
}

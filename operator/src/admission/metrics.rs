//! The quota webhook's metrics.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};

use crate::error::Result;

/// The webhook's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Decisions, by kind and outcome (`admitted`, `refused`, `unavailable`).
    pub decisions: IntCounterVec,
    /// How long a decision takes.
    pub duration: HistogramVec,
    /// Reservations held now.
    pub reservations: IntGauge,
    /// Reservations ended, by how (`observed`, `absent`).
    pub settled: IntCounterVec,
    /// Refusals by the tenancy policy (`spec.allowed`), by rule.
    pub policy_refusals: IntCounterVec,
    /// Changed certificate files taken up (`reloaded`) or not (`refused`).
    pub certificates: IntCounterVec,
    /// Sweeps of the reservations completed.
    pub sweeps: prometheus::IntCounter,
    /// When the served certificate stops being valid (seconds since the epoch).
    pub certificate_expiry: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &prometheus::Registry) -> Result<Self> {
        let decisions = IntCounterVec::new(
            Opts::new("admission_decisions_total", "Quota admission decisions, by kind and outcome."),
            &["kind", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("admission_duration_seconds", "How long a quota admission decision takes.")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
            &["kind"],
        )?;
        let reservations =
            IntGauge::new("admission_reservations", "Admissions not yet seen in the watches.")?;
        let settled = IntCounterVec::new(
            Opts::new("admission_reservations_settled_total", "Reservations ended, by how."),
            &["how"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(reservations.clone()))?;
        let certificates = IntCounterVec::new(
            Opts::new(
                "webhook_certificate_reloads_total",
                "Changed webhook certificate files, taken up (reloaded) or not (refused).",
            ),
            &["outcome"],
        )?;
        let policy_refusals = IntCounterVec::new(
            Opts::new(
                "admission_policy_violations_total",
                "What the tenancy policy (spec.allowed) refused, by rule.",
            ),
            &["rule"],
        )?;
        registry.register(Box::new(policy_refusals.clone()))?;
        registry.register(Box::new(settled.clone()))?;
        registry.register(Box::new(certificates.clone()))?;
        let sweeps = prometheus::IntCounter::new(
            "admission_sweeps_total",
            "Sweeps of the reservations completed (one every 5 s while the webhook runs).",
        )?;
        registry.register(Box::new(sweeps.clone()))?;
        let certificate_expiry = IntGauge::new(
            "webhook_certificate_expiry_timestamp_seconds",
            "When the webhook's served certificate stops being valid (its notAfter), in seconds since the epoch.",
        )?;
        registry.register(Box::new(certificate_expiry.clone()))?;
        Ok(Metrics {
            decisions,
            duration,
            reservations,
            settled,
            policy_refusals,
            certificates,
            sweeps,
            certificate_expiry,
        })
    }
}

//! The meter's own metrics and its standing, which `/readyz` reports as the `metering` check: a
//! ledger that cannot be written makes metering unready (with the reason) without making Commons
//! unready, since admission and the controllers do not depend on it.

use std::sync::Mutex;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The meter's metrics.
#[derive(Clone, Debug)]
pub struct MeterMetrics {
    /// Spans opened.
    pub opened: IntCounter,
    /// Spans closed, by how the end is known (`recorded` or `estimated`).
    pub closed: IntCounterVec,
    /// Changes waiting to be written to the ledger.
    pub pending: IntGauge,
    /// 1 while the ledger is written without error.
    pub ledger_up: IntGauge,
    /// Failed writes to the ledger, by reason.
    pub ledger_errors: IntCounterVec,
    /// Spans open now.
    pub open: IntGauge,
    /// Seconds since the last instant up to which the ledger holds everything the meter saw.
    pub lag: IntGauge,
}

impl MeterMetrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> prometheus::Result<MeterMetrics> {
        let opened = IntCounter::new("meter_intervals_opened_total", "Allocation intervals opened.")?;
        let closed = IntCounterVec::new(
            Opts::new(
                "meter_intervals_closed_total",
                "Allocation intervals closed, by how the end is known: recorded (the object's own end or its observed deletion) or estimated (the last instant it was seen, after it went while Commons was not watching).",
            ),
            &["end"],
        )?;
        let pending = IntGauge::new("meter_pending_writes", "Changes waiting to be written to the ledger.")?;
        let ledger_up = IntGauge::new("meter_ledger_up", "1 while the ledger is written without error.")?;
        let ledger_errors = IntCounterVec::new(
            Opts::new("meter_ledger_errors_total", "Failed writes to the ledger, by reason."),
            &["reason"],
        )?;
        let open = IntGauge::new("meter_open_intervals", "Allocation intervals open now.")?;
        let lag = IntGauge::new(
            "meter_seen_through_lag_seconds",
            "Seconds since the last instant the meter saw everything (all its watches working): what goes unseen meanwhile is closed at that instant.",
        )?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(opened.clone()))?;
        registry.register(Box::new(closed.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        registry.register(Box::new(ledger_up.clone()))?;
        registry.register(Box::new(ledger_errors.clone()))?;
        registry.register(Box::new(open.clone()))?;
        Ok(MeterMetrics { opened, closed, pending, ledger_up, ledger_errors, open, lag })
    }
}

/// Whether metering works now, and if not, why.
#[derive(Debug)]
pub struct Standing {
    state: Mutex<Result<(), String>>,
}

impl Default for Standing {
    fn default() -> Self {
        Standing { state: Mutex::new(Err("the meter has not started yet".into())) }
    }
}

impl Standing {
    /// Metering works.
    pub fn ok(&self) {
        self.set(Ok(()));
    }

    /// Metering does not work, for `reason`.
    pub fn failing(&self, reason: String) {
        self.set(Err(reason));
    }

    fn set(&self, state: Result<(), String>) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    /// The check `/readyz` reports.
    pub fn check(&self) -> Result<(), String> {
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(_) => Err("the meter stopped".into()),
        }
    }
}

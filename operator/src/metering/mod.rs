//! Chargeback metering: what each tenancy holds, as per-second spans from the objects' own
//! lifecycle timestamps (`interval`, `observe`, `tracker`), recorded in the ledger as they open and
//! close (`meter`, `writer`), and priced exactly (`rating`, `rater`, `sharing`, `money`) into
//! charge lines (`charges`).

pub mod allocation;
pub mod annual;
pub mod budgets;
pub mod charges;
pub mod chart;
pub mod closer;
pub mod focus;
pub mod forecast;
pub mod health;
pub mod interval;
pub mod meter;
pub mod money;
pub mod observe;
pub mod periods;
pub mod rater;
pub mod rating;
pub mod report;
pub mod runtime;
pub mod shares_observe;
pub mod sharing;
pub mod stored;
pub mod tracker;
pub mod writer;

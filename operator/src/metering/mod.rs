//! Chargeback metering: the exact arithmetic of money and rating (pure). The ledger, the meter
//! that records allocation intervals and the reports build on these (docs/metering.md).

pub mod allocation;
pub mod interval;
pub mod money;
pub mod rating;

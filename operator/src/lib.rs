//! The Commons operator: controllers, metering and the runtime of the `commons` binary.

pub mod admission;
pub mod annual_cmd;
pub mod catalogue;
pub mod catalogue_cmd;
pub mod crds_cmd;
pub mod drive;
pub mod error;
pub mod forecast_cmd;
pub mod metrics;
pub mod readiness;
pub mod run;

pub use error::{Error, Result};
pub mod apply;
pub mod conditions;
pub mod events;
pub mod hosted;
pub mod keeper;
pub mod ledger;
pub mod ledger_cmd;
pub mod membership;
pub mod meter_cmd;
pub mod metering;
pub mod naming;
pub mod policy;
pub mod quantity;
pub mod ratecard;
pub mod reachability;
pub mod reachability_cmd;
pub mod reflectors;
pub mod report_cmd;
pub mod segment;
pub mod shutdown;
pub mod subscription;
pub mod tenancy;
pub mod watch;
pub mod written;

//! The `commons.dev/v1alpha1` API: the one source of the Commons CustomResourceDefinitions.
//!
//! Every kind is a Rust type here; the CRD YAML under `crds/yaml/` is generated from these types by
//! `commons crds` and never edited by hand (a test fails when the two differ). Doc comments become
//! `kubectl explain` text; schemars attributes become OpenAPI validation; `x_kube(validation)`
//! attributes become CEL rules (`x-kubernetes-validations`) that the apiserver enforces.

// `printcolumn(name = .., type_ = ..)` entries repeat their keys by design; the lint misreads them.
#![allow(clippy::duplicated_attributes)]

pub mod allowed;
pub mod common;
pub mod generate;
pub mod hosted_service;
pub mod labels;
pub mod network_segment;
pub mod rate_card;
pub mod subscription;
pub mod tenancy;
pub mod tenancy_request;
pub mod vat_rate;

pub use common::{Amount, Classification, Protocol, ResourceRequirements, Sector};
pub use hosted_service::{HostedService, HostedServiceSpec, HostedServiceStatus};
pub use network_segment::{NetworkSegment, NetworkSegmentSpec, NetworkSegmentStatus};
pub use rate_card::{RateCard, RateCardSpec, RateCardStatus};
pub use subscription::{Subscription, SubscriptionSpec, SubscriptionStatus};
pub use tenancy::{Tenancy, TenancySpec, TenancyStatus};
pub use tenancy_request::{TenancyRequest, TenancyRequestSpec, TenancyRequestStatus};
pub use vat_rate::{VatRate, VatRateSpec};

/// The API group of every Commons kind.
pub const GROUP: &str = "commons.dev";
/// The API version of every Commons kind.
pub const VERSION: &str = "v1alpha1";

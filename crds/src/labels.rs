//! The label and annotation keys Commons puts on what it manages. They are an interface: network
//! policies select on them, metering groups by them, and people filter with them, so they are
//! defined once here.

/// The Tenancy a namespace or object belongs to.
pub const TENANCY: &str = "commons.dev/tenancy";
/// The id of the tenancy's organisation (`spec.organisation.id`).
pub const ORGANISATION: &str = "commons.dev/organisation";
/// The sector of the tenancy's organisation.
pub const SECTOR: &str = "commons.dev/sector";
/// The classification of the tenancy or service.
pub const CLASSIFICATION: &str = "commons.dev/classification";
/// The tenancy's cost centre.
pub const COST_CENTRE: &str = "commons.dev/cost-centre";
/// `app.kubernetes.io/managed-by`, set to [`MANAGER`] on everything Commons creates.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`], and Commons' server-side apply field manager.
pub const MANAGER: &str = "commons";

/// `kubernetes.io/metadata.name`: the apiserver sets it on every namespace to the namespace's own
/// name and nobody can change it, so network peers are chosen by it rather than by a label a
/// namespace's editor could set.
pub const NAMESPACE_NAME: &str = "kubernetes.io/metadata.name";

/// Label keys a tenancy may not set on its namespaces, because Commons manages them.
pub const RESERVED_PREFIXES: [&str; 2] = ["commons.dev/", "pod-security.kubernetes.io/"];

/// On pods: who may reach the pod over the network. `tenancy` (or no label): only the tenancy's
/// own namespaces; `segment`: also members of the tenancy's network segments and their peers;
/// `public`: also the segments' ingress ranges. HostedService pods carry it from
/// `spec.exposure`; any pod may carry it.
pub const EXPOSURE: &str = "commons.dev/exposure";
/// Values of [`EXPOSURE`] that network segment paths reach.
pub const SEGMENT_EXPOSURES: [&str; 2] = ["segment", "public"];
/// On pods: the HostedService the pod runs (for the service-to-service reachability view).
pub const HOSTED_SERVICE: &str = "commons.dev/hosted-service";
/// On NetworkPolicies Commons makes for a segment: the segment's name.
pub const SEGMENT: &str = "commons.dev/segment";

/// On a Tenancy: the quota change request (`<namespace>/<name>`) whose limits its quota last took.
pub const QUOTA_CHANGE_REQUEST: &str = "commons.dev/quota-change-request";

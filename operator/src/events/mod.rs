//! Publishing Events: what a person should see, counted as apiserver writes, never fatal. Every
//! reason Commons records is a [`Reason`], which also decides whether it is a Warning.

use kube::runtime::events::EventType;
use kube::{Client, Resource};

mod recorder;
pub use recorder::{Occurrence, Recorder};

/// Why Commons records an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A tenancy's namespace was created.
    NamespaceCreated,
    /// A namespace removed from a tenancy's spec was deleted.
    NamespaceDeleted,
    /// A namespace removed from the spec still holds claims or pods and is kept.
    NamespaceDeletionHeld,
    /// A namespace of the spec belongs to something else.
    NamespaceConflict,
    /// The tenancy has used all of a resource.
    QuotaExhausted,
    /// The tenancy's spend this month reached one of its budget's alert thresholds.
    BudgetThresholdReached,
    /// The tenancy was suspended.
    Suspended,
    /// The tenancy is active again.
    Resumed,
    /// The tenancy passed its expiry date.
    Expired,
    /// The tenancy expires within 7 days.
    ExpiresWithin7Days,
    /// The tenancy expires within 1 day.
    ExpiresWithin1Day,
    /// A segment the tenancy asked to join refused it.
    SegmentRefused,
    /// A tenancy joined a segment.
    MemberJoined,
    /// A tenancy left a segment.
    MemberLeft,
    /// A segment refused a tenancy.
    MemberRefused,
    /// A segment's outside range covered a cluster network, which was cut out.
    ClusterNetworkExcluded,
    /// A HostedService runs in its tenancy.
    ServiceAdmitted,
    /// A HostedService may not run where it is.
    ServiceRefused,
    /// A HostedService's pods are refused by the tenancy's quota.
    ServiceQuotaExceeded,
    /// A HostedService's pods are refused for another reason.
    ServicePodsRefused,
    /// A HostedService was scaled to zero (its tenancy is suspended).
    ServiceScaledDown,
    /// A HostedService was scaled back up (its tenancy is active again).
    ServiceScaledUp,
    /// A consumer's subscription to a HostedService became active.
    ConsumerActivated,
    /// A consumer's subscription to a HostedService stopped being active.
    ConsumerEnded,
    /// A Subscription became active.
    SubscriptionActive,
    /// A Subscription waits (for the provider, or for the service).
    SubscriptionPending,
    /// A Subscription was refused.
    SubscriptionRefused,
    /// A Subscription was ended by its provider.
    SubscriptionEnded,
    /// A tenancy request was approved by the auto-approval policy.
    RequestApproved,
    /// An approved request's Tenancy was created.
    TenancyCreated,
    /// An approved request's Tenancy is Ready.
    TenancyProvisioned,
    /// An approved request's tenancy name is taken by another Tenancy.
    TenancyNameTaken,
    /// An approved quota change was applied to its Tenancy.
    QuotaChanged,
    /// An approved quota change cannot be applied (no such Tenancy, another organisation's, or
    /// refused by the Tenancy's validation).
    QuotaChangeNotApplied,
}

impl Reason {
    /// The reason as the Event carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NamespaceCreated => "NamespaceCreated",
            Reason::NamespaceDeleted => "NamespaceDeleted",
            Reason::NamespaceDeletionHeld => "NamespaceDeletionHeld",
            Reason::NamespaceConflict => "NamespaceConflict",
            Reason::QuotaExhausted => "QuotaExhausted",
            Reason::BudgetThresholdReached => "BudgetThresholdReached",
            Reason::Suspended => "Suspended",
            Reason::Resumed => "Resumed",
            Reason::Expired => "Expired",
            Reason::ExpiresWithin7Days => "ExpiresWithin7Days",
            Reason::ExpiresWithin1Day => "ExpiresWithin1Day",
            Reason::SegmentRefused => "SegmentRefused",
            Reason::MemberJoined => "MemberJoined",
            Reason::MemberLeft => "MemberLeft",
            Reason::MemberRefused => "MemberRefused",
            Reason::ClusterNetworkExcluded => "ClusterNetworkExcluded",
            Reason::ServiceAdmitted => "Admitted",
            Reason::ServiceRefused => "Refused",
            Reason::ServiceQuotaExceeded => "QuotaExceeded",
            Reason::ServicePodsRefused => "PodsRefused",
            Reason::ServiceScaledDown => "ScaledDown",
            Reason::ServiceScaledUp => "ScaledUp",
            Reason::ConsumerActivated => "ConsumerActivated",
            Reason::ConsumerEnded => "ConsumerEnded",
            Reason::SubscriptionActive => "Activated",
            Reason::SubscriptionPending => "Pending",
            Reason::SubscriptionRefused => "Refused",
            Reason::SubscriptionEnded => "Ended",
            Reason::RequestApproved => "Approved",
            Reason::TenancyCreated => "TenancyCreated",
            Reason::TenancyProvisioned => "Provisioned",
            Reason::TenancyNameTaken => "NameTaken",
            Reason::QuotaChanged => "QuotaChanged",
            Reason::QuotaChangeNotApplied => "QuotaChangeNotApplied",
        }
    }

    /// Whether a person should act on it.
    pub fn event_type(self) -> EventType {
        match self {
            Reason::NamespaceCreated
            | Reason::NamespaceDeleted
            | Reason::Suspended
            | Reason::Resumed
            | Reason::MemberJoined
            | Reason::MemberLeft
            | Reason::ServiceAdmitted
            | Reason::ServiceScaledDown
            | Reason::ServiceScaledUp
            | Reason::ConsumerActivated
            | Reason::ConsumerEnded
            | Reason::SubscriptionActive
            | Reason::SubscriptionPending
            | Reason::SubscriptionEnded
            | Reason::RequestApproved
            | Reason::TenancyCreated
            | Reason::TenancyProvisioned
            | Reason::QuotaChanged => EventType::Normal,
            Reason::NamespaceDeletionHeld
            | Reason::QuotaChangeNotApplied
            | Reason::NamespaceConflict
            | Reason::QuotaExhausted
            | Reason::BudgetThresholdReached
            | Reason::Expired
            | Reason::ExpiresWithin7Days
            | Reason::ExpiresWithin1Day
            | Reason::SegmentRefused
            | Reason::MemberRefused
            | Reason::ClusterNetworkExcluded
            | Reason::ServiceRefused
            | Reason::ServiceQuotaExceeded
            | Reason::ServicePodsRefused
            | Reason::SubscriptionRefused
            | Reason::TenancyNameTaken => EventType::Warning,
        }
    }
}

/// The one Event recorder of the process, shared by every controller.
pub fn recorder(client: Client) -> Recorder {
    Recorder::new(client, "commons", std::env::var("HOSTNAME").ok())
}

/// Publishes an Event about `obj`; a failure to publish is logged, never returned.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    reason: Reason,
    action: &str,
    note: String,
) {
    crate::apply::count_write("Event", "publish");
    let regarding = obj.object_ref(&());
    let occurrence = Occurrence {
        type_: reason.event_type(),
        reason: reason.as_str(),
        action,
        note: &note,
        regarding: &regarding,
    };
    if let Err(e) = recorder.publish(&occurrence).await {
        tracing::warn!(error = %e, reason = reason.as_str(), "cannot publish event");
    }
}

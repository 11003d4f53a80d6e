//! What the ledger records (pure): spans of fixed allocation, each attributed to the tenancy and
//! organisation that held it, as they were when the span opened.

use std::fmt;

/// What kind of object held the allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A pod: CPU and memory requests.
    Pod,
    /// A PersistentVolumeClaim: requested storage.
    Claim,
    /// A Service of type LoadBalancer.
    LoadBalancer,
    /// A node: the CPU and memory it offers pods (its allocatable), charged to no tenancy; what
    /// no pod reserved of it is the platform's unallocated capacity.
    Node,
    /// A consumer's share of a shared HostedService's cost while its Subscription is active:
    /// attributed to the consumer, `hosted_service` is `<provider namespace>/<service>`, the
    /// weight in `Held::share_weight`.
    Share,
    /// The provider's own share, while it lists its own tenancy among the service's consumers.
    ProviderShare,
}

impl Kind {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Claim => "claim",
            Kind::LoadBalancer => "load-balancer",
            Kind::Node => "node",
            Kind::Share => "share",
            Kind::ProviderShare => "provider-share",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Pod, Kind::Claim, Kind::LoadBalancer, Kind::Node, Kind::Share, Kind::ProviderShare]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who an allocation is charged to, as it stood when the span opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attribution {
    /// The Tenancy's name.
    pub tenancy: String,
    /// The organisation's id (`spec.organisation.id`).
    pub organisation: String,
    /// The organisation's display name.
    pub organisation_name: String,
    /// The organisation's sector.
    pub sector: String,
    /// The tenancy's cost centre.
    pub cost_centre: String,
    /// The HostedService the object belongs to, or empty.
    pub hosted_service: String,
}

/// What an object holds, in milli-units as Kubernetes counts them: CPU millicores, memory and
/// storage milli-bytes, thousandths of a load balancer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Held {
    /// CPU, millicores.
    pub cpu_milli: i64,
    /// Memory, milli-bytes.
    pub memory_milli: i64,
    /// Storage, milli-bytes.
    pub storage_milli: i64,
    /// Load balancers, thousandths.
    pub load_balancer_milli: i64,
    /// For a share of a shared service: its weight in the split (1 for an equal split).
    pub share_weight: i64,
}

impl Held {
    /// Whether it holds nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Held::default()
    }
}

/// One span of fixed allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Unique: `<kind>/<uid>/<start_ms>`, so the same span is never recorded twice.
    pub key: String,
    /// The kind of object.
    pub kind: Kind,
    /// The object's uid.
    pub uid: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// Who it is charged to.
    pub attribution: Attribution,
    /// What it held throughout.
    pub held: Held,
    /// From (Unix milliseconds, UTC).
    pub start_ms: i64,
    /// Until, once it closed.
    pub end_ms: Option<i64>,
    /// Whether the end is the last instant the object was seen rather than a recorded end.
    pub estimated: bool,
    /// When the ledger recorded it (Unix ms; set by the ledger on writing).
    pub recorded_ms: i64,
    /// When the ledger recorded its end (set by the ledger on writing).
    pub end_recorded_ms: Option<i64>,
}

impl Interval {
    /// The key of an object's span that starts at `start_ms`.
    pub fn key_of(kind: Kind, uid: &str, start_ms: i64) -> String {
        format!("{kind}/{uid}/{start_ms}")
    }
}

/// The end of an open span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// The span's key.
    pub key: String,
    /// Until (never before its start: the writer of the close makes sure).
    pub end_ms: i64,
    /// Whether the end is the last instant the object was seen.
    pub estimated: bool,
}

/// One change to the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A span opened (or opened and closed, for one learned of after it ended).
    Open(Box<Interval>),
    /// A span closed.
    Close(Close),
}

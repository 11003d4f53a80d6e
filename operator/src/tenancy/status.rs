//! Tenancy status: conditions, expiry stages, and how they change (pure).

pub use crate::conditions::{carry_transition_times, condition};
use std::time::Duration;

use commons_crds::tenancy::{
    MembershipState, NamespaceStatus, QuotaStatus, SegmentMembership, Tenancy, TenancyStatus,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types a Tenancy reports.
pub mod types {
    /// Everything Commons manages for the tenancy is in place and it is not suspended.
    pub const READY: &str = "Ready";
    /// Every namespace has its share of the tenancy-wide quota.
    pub const QUOTA_APPLIED: &str = "QuotaApplied";
    /// Baseline isolation policies are in place in every namespace.
    pub const NETWORK_READY: &str = "NetworkReady";
    /// The tenancy is suspended: nothing new starts.
    pub const SUSPENDED: &str = "Suspended";
    /// The tenancy expires within 7 days, or has expired.
    pub const EXPIRING: &str = "Expiring";
    /// A namespace removed from the spec still holds claims or pods, and is kept until its
    /// deletion is confirmed.
    pub const NAMESPACE_DELETION_PENDING: &str = "NamespaceDeletionPending";
    /// Whether this month's spend has reached spec.budget.
    pub const BUDGET_EXCEEDED: &str = "BudgetExceeded";
}

/// Where a tenancy stands against its expiry date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No expiry date.
    None,
    /// More than 7 days away.
    Later,
    /// Within 7 days.
    Within7Days,
    /// Within 1 day.
    Within1Day,
    /// Passed: the tenancy is suspended.
    Expired,
}

impl Expiry {
    /// The condition reason of this stage.
    pub fn reason(self) -> &'static str {
        match self {
            Expiry::None | Expiry::Later => "NotExpiring",
            Expiry::Within7Days => "ExpiresWithin7Days",
            Expiry::Within1Day => "ExpiresWithin1Day",
            Expiry::Expired => "Expired",
        }
    }
}

/// The expiry stage at `now`, and how long until the next stage begins.
pub fn expiry(now: Timestamp, expires_at: Option<&Time>) -> (Expiry, Option<Duration>) {
    let Some(at) = expires_at.map(|t| t.0) else {
        return (Expiry::None, None);
    };
    let left = at.duration_since(now);
    let day = SignedDuration::from_hours(24);
    let until = |d: SignedDuration| Duration::try_from(d).ok();
    if left <= SignedDuration::ZERO {
        (Expiry::Expired, None)
    } else if left <= day {
        (Expiry::Within1Day, until(left))
    } else if left <= day * 7 {
        (Expiry::Within7Days, until(left - day))
    } else {
        (Expiry::Later, until(left - day * 7))
    }
}

/// Why nothing new starts in a tenancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspension {
    /// `spec.suspended` is true.
    Suspended,
    /// The tenancy passed `spec.expiresAt`.
    Expired,
}

impl Suspension {
    /// Why, as the `Suspended` and `Ready` conditions give it.
    pub fn reason(self) -> &'static str {
        match self {
            Suspension::Suspended => "Suspended",
            Suspension::Expired => "Expired",
        }
    }

    /// Whether `tenancy` is suspended at `stage` of its expiry, and why (expiry first).
    pub fn of(tenancy: &Tenancy, stage: Expiry) -> Option<Suspension> {
        if stage == Expiry::Expired {
            Some(Suspension::Expired)
        } else {
            tenancy.spec.suspended.then_some(Suspension::Suspended)
        }
    }
}

/// What the reconciler found, from which the status is written.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Each namespace of the spec.
    pub namespaces: Vec<NamespaceStatus>,
    /// Tenancy-wide quota, when the tenancy has limits.
    pub quota: Option<QuotaStatus>,
    /// Resources whose tenancy-wide usage has reached the limit.
    pub exhausted: Vec<String>,
    /// Whether the tenancy is suspended, and why.
    pub suspended: Option<Suspension>,
    /// The expiry stage.
    pub expiry: Option<Expiry>,
    /// Each requested network segment: joined, refused or pending.
    pub segments: Vec<SegmentMembership>,
    /// Namespaces removed from the spec but kept until their deletion is confirmed, with why.
    pub held: Vec<NamespaceStatus>,
    /// This month's spend against spec.budget, when it has one.
    pub budget: Option<crate::metering::budgets::Assessment>,
}

/// The status to write for `tenancy` given what the reconciler found.
pub fn build(tenancy: &Tenancy, obs: &Observations) -> TenancyStatus {
    let generation = tenancy.metadata.generation;
    let previous = tenancy.status.clone().unwrap_or_default();
    let conflicts: Vec<&NamespaceStatus> = obs.namespaces.iter().filter(|n| !n.ready).collect();
    let namespaces_ok = conflicts.is_empty();
    let mut conditions = vec![];

    let quota_cond = match &obs.quota {
        None => condition(
            types::QUOTA_APPLIED,
            true,
            "NoLimits",
            "the tenancy sets no tenancy-wide limits",
            generation,
        ),
        Some(_) if !obs.exhausted.is_empty() => condition(
            types::QUOTA_APPLIED,
            true,
            "QuotaExhausted",
            format!("applied; the tenancy has used all of: {}", obs.exhausted.join(", ")),
            generation,
        ),
        Some(_) => condition(
            types::QUOTA_APPLIED,
            true,
            "Applied",
            "each namespace holds its share of the tenancy's limits",
            generation,
        ),
    };
    conditions.push(quota_cond);
    let refused: Vec<&str> = obs
        .segments
        .iter()
        .filter(|m| m.state == MembershipState::Refused)
        .map(|m| m.name.as_str())
        .collect();
    let pending: Vec<&str> = obs
        .segments
        .iter()
        .filter(|m| m.state == MembershipState::Pending)
        .map(|m| m.name.as_str())
        .collect();
    let joined = obs.segments.len() - refused.len() - pending.len();
    let (net_reason, net_message) = if !namespaces_ok {
        ("NamespaceConflict", "some namespaces could not be managed".to_owned())
    } else if !refused.is_empty() {
        ("SegmentsRefused", format!("baseline isolation applied; refused by: {}", refused.join(", ")))
    } else if !pending.is_empty() {
        ("SegmentsPending", format!("baseline isolation applied; segments not found: {}", pending.join(", ")))
    } else if joined > 0 {
        ("SegmentsJoined", format!("baseline isolation applied; joined {joined} segments"))
    } else {
        ("BaselineApplied", "baseline isolation applied in every namespace".to_owned())
    };
    conditions.push(condition(types::NETWORK_READY, namespaces_ok, net_reason, net_message, generation));
    let suspended_msg = match obs.suspended {
        Some(Suspension::Expired) => {
            "the tenancy passed its expiry date; nothing new starts (nothing was deleted)"
        }
        Some(_) => "spec.suspended is true; nothing new starts (nothing was deleted)",
        None => "the tenancy is active",
    };
    conditions.push(condition(
        types::SUSPENDED,
        obs.suspended.is_some(),
        obs.suspended.map_or("Active", Suspension::reason),
        suspended_msg,
        generation,
    ));
    if let Some(e) = obs.expiry {
        let at = tenancy.spec.expires_at.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
        let expiring = matches!(e, Expiry::Within7Days | Expiry::Within1Day | Expiry::Expired);
        conditions.push(condition(
            types::EXPIRING,
            expiring,
            e.reason(),
            format!("expires at {at}"),
            generation,
        ));
    }
    let (ready, reason, message) = if !namespaces_ok {
        let detail: Vec<String> = conflicts
            .iter()
            .map(|n| format!("{}: {}", n.name, n.message.clone().unwrap_or_default()))
            .collect();
        (false, "NamespaceConflict", detail.join("; "))
    } else if let Some(why) = obs.suspended {
        (false, why.reason(), suspended_msg.to_owned())
    } else {
        (true, "Reconciled", format!("{} namespaces ready", obs.namespaces.len()))
    };
    conditions.push(match obs.held.as_slice() {
        [] => condition(
            types::NAMESPACE_DELETION_PENDING,
            false,
            "NothingHeld",
            "no removed namespace is waiting for confirmation",
            generation,
        ),
        held => condition(
            types::NAMESPACE_DELETION_PENDING,
            true,
            "AwaitingConfirmation",
            held.iter()
                .map(|n| format!("{}: {}", n.name, n.message.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; "),
            generation,
        ),
    });
    if let Some(b) = &obs.budget {
        let mut c =
            condition(types::BUDGET_EXCEEDED, b.status == "True", b.reason, b.message.clone(), generation);
        c.status = b.status.to_owned();
        conditions.push(c);
    }
    conditions.insert(0, condition(types::READY, ready, reason, message, generation));
    carry_transition_times(&mut conditions, &previous.conditions);

    TenancyStatus {
        observed_generation: generation,
        conditions,
        namespaces: obs.namespaces.iter().chain(&obs.held).cloned().collect(),
        quota: obs.quota.clone(),
        segments: obs.segments.clone(),
        budget: obs.budget.as_ref().and_then(|b| b.budget.clone()),
    }
}

/// The condition of `type_` in a status, if present.
pub fn find<'a>(status: Option<&'a TenancyStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::fixtures::TenancyBuilder;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn expiry_stages_by_table() {
        let now = at("2026-11-23T12:00:00Z");
        let cases = [
            ("2026-12-31T00:00:00Z", Expiry::Later),
            ("2026-11-30T11:00:00Z", Expiry::Within7Days),
            ("2026-11-24T11:59:59Z", Expiry::Within1Day),
            ("2026-11-23T12:00:00Z", Expiry::Expired),
            ("2026-01-01T00:00:00Z", Expiry::Expired),
        ];
        for (when, want) in cases {
            assert_eq!(expiry(now, Some(&Time(at(when)))).0, want, "{when}");
        }
        assert_eq!(expiry(now, None), (Expiry::None, None));
        // The next check is when the next stage begins.
        let (_, next) = expiry(now, Some(&Time(at("2026-12-01T12:00:00Z"))));
        assert_eq!(next, Some(Duration::from_secs(24 * 3600)));
    }

    #[test]
    fn a_clean_tenancy_is_ready() {
        let t = TenancyBuilder::new("x").build();
        let obs = Observations {
            namespaces: vec![NamespaceStatus { name: "x-main".into(), ready: true, message: None }],
            ..Default::default()
        };
        let s = build(&t, &obs);
        assert_eq!(s.observed_generation, Some(1));
        let ready = &s.conditions[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str(), ready.reason.as_str()),
            ("Ready", "True", "Reconciled")
        );
    }

    #[test]
    fn a_conflicting_namespace_makes_it_not_ready_with_the_reason() {
        let t = TenancyBuilder::new("x").build();
        let obs = Observations {
            namespaces: vec![NamespaceStatus {
                name: "x-main".into(),
                ready: false,
                message: Some("belongs to something else".into()),
            }],
            ..Default::default()
        };
        let s = build(&t, &obs);
        assert_eq!(s.conditions[0].status, "False");
        assert_eq!(s.conditions[0].reason, "NamespaceConflict");
        assert!(s.conditions[0].message.contains("x-main: belongs to something else"));
    }

    #[test]
    fn a_held_namespace_is_listed_and_pending_without_making_it_not_ready() {
        let t = TenancyBuilder::new("x").build();
        let ok = NamespaceStatus { name: "x-main".into(), ready: true, message: None };
        let held = NamespaceStatus {
            name: "x-old".into(),
            ready: false,
            message: Some("still holds 1 PersistentVolumeClaim".into()),
        };
        let quiet = build(&t, &Observations { namespaces: vec![ok.clone()], ..Default::default() });
        let pending = find(Some(&quiet), types::NAMESPACE_DELETION_PENDING).unwrap();
        assert_eq!((pending.status.as_str(), pending.reason.as_str()), ("False", "NothingHeld"));
        let s = build(&t, &Observations { namespaces: vec![ok], held: vec![held], ..Default::default() });
        assert_eq!(s.namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["x-main", "x-old"]);
        assert_eq!(find(Some(&s), types::READY).unwrap().status, "True");
        let pending = find(Some(&s), types::NAMESPACE_DELETION_PENDING).unwrap();
        assert_eq!((pending.status.as_str(), pending.reason.as_str()), ("True", "AwaitingConfirmation"));
        assert!(
            pending.message.contains("x-old: still holds 1 PersistentVolumeClaim"),
            "{}",
            pending.message
        );
    }

    #[test]
    fn transition_times_survive_unchanged_statuses() {
        let mut t = TenancyBuilder::new("x").build();
        let obs = Observations {
            namespaces: vec![NamespaceStatus { name: "x-main".into(), ready: true, message: None }],
            ..Default::default()
        };
        let mut first = build(&t, &obs);
        for c in &mut first.conditions {
            c.last_transition_time = Time(at("2020-01-01T00:00:00Z"));
        }
        t.status = Some(first.clone());
        let second = build(&t, &obs);
        assert_eq!(first, second, "an unchanged tenancy gets an identical status");
        let suspended = build(&t, &Observations { suspended: Some(Suspension::Suspended), ..obs });
        let ready = &suspended.conditions[0];
        assert_eq!(ready.status, "False");
        assert_ne!(ready.last_transition_time, Time(at("2020-01-01T00:00:00Z")));
    }
}

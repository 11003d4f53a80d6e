//! What a tenancy request should lead to, as pure functions: the Tenancy an approved request makes,
//! the decision the policy writes, and the request's status from its decision and its Tenancy.

use std::collections::BTreeMap;

use commons_crds::tenancy::Tenancy;
use commons_crds::tenancy_request::{Decision, Outcome, TenancyRequest, TenancyRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::ResourceExt;

use crate::conditions::{carry_transition_times, condition};

/// On a Tenancy made from a request: `<namespace>/<name>` of the request.
pub const FROM_REQUEST: &str = "commons.dev/tenancy-request";

/// `<namespace>/<name>`.
pub fn key(req: &TenancyRequest) -> String {
    format!("{}/{}", req.namespace().unwrap_or_default(), req.name_any())
}

/// The Tenancy an approved request for a new tenancy (`spec`) makes, marked with the request.
pub fn tenancy(req: &TenancyRequest, spec: &commons_crds::TenancySpec) -> Tenancy {
    Tenancy {
        metadata: ObjectMeta {
            name: Some(req.spec.tenancy_name.clone()),
            annotations: Some(BTreeMap::from([(FROM_REQUEST.to_owned(), key(req))])),
            ..ObjectMeta::default()
        },
        spec: spec.clone(),
        status: None,
    }
}

/// Where an approved request's Tenancy stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioning {
    /// Not approved: nothing is made.
    NotApproved,
    /// Approved; the Tenancy is still to be made.
    Missing,
    /// The Tenancy made from this request, ready or not (and why not).
    Made {
        /// Whether its Ready condition is True.
        ready: bool,
        /// Its Ready condition's message.
        message: String,
    },
    /// A Tenancy of that name exists that this request did not make.
    Taken,
    /// The Tenancy this request made was deleted since: it is never made again (a tenancy is
    /// deleted on purpose, with its protection lifted first).
    Gone,
}

/// The decision on `req`, if there is one.
pub fn decision(req: &TenancyRequest) -> Option<&Decision> {
    req.status.as_ref().and_then(|s| s.decision.as_ref())
}

/// Where the request's Tenancy stands, given the Tenancy of its name (if any).
pub fn provisioning(req: &TenancyRequest, observed: Option<&Tenancy>) -> Provisioning {
    if decision(req).map(|d| d.outcome) != Some(Outcome::Approved) {
        return Provisioning::NotApproved;
    }
    let made_before = req.status.as_ref().is_some_and(|s| s.tenancy.is_some());
    match observed {
        None if made_before => Provisioning::Gone,
        None => Provisioning::Missing,
        Some(t) if t.annotations().get(FROM_REQUEST) == Some(&key(req)) => {
            let ready = t.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
            Provisioning::Made {
                ready: ready.is_some_and(|c| c.status == "True"),
                message: ready.map(|c| c.message.clone()).unwrap_or_default(),
            }
        }
        Some(_) => Provisioning::Taken,
    }
}

/// Whether the organisation a tenancy names is one the cluster knows as named: another Tenancy
/// of that id has the same sector and name. Auto-approval trusts nothing else a requester
/// asserts about its organisation (its sector decides which network segments it may join), so an
/// organisation's first tenancy is always decided by a person.
pub fn organisation_known(spec: &commons_crds::TenancySpec, tenancies: &[std::sync::Arc<Tenancy>]) -> bool {
    let o = &spec.organisation;
    tenancies.iter().any(|t| {
        let k = &t.spec.organisation;
        k.id == o.id && k.sector == o.sector && k.display_name == o.display_name
    })
}

/// The decision an auto-approval rule makes.
pub fn by_policy(rule: &str, why: &str, at: jiff::Timestamp) -> Decision {
    Decision {
        outcome: Outcome::Approved,
        decided_by: format!("policy:{rule}"),
        decided_at: Time(at),
        reason: format!("approved by the auto-approval rule {rule}: {why}"),
    }
}

/// The decision's condition (`Approved` or `Denied`, True).
pub fn decision_condition(d: &Decision, generation: Option<i64>) -> Condition {
    let (type_, reason) = match d.outcome {
        Outcome::Approved => {
            ("Approved", if d.decided_by.starts_with("policy:") { "AutoApproved" } else { "Approved" })
        }
        Outcome::Denied => ("Denied", "Denied"),
    };
    let mut c =
        condition(type_, true, reason, format!("{} by {}: {}", type_, d.decided_by, d.reason), generation);
    c.last_transition_time = d.decided_at.clone();
    c
}

/// The decision's condition, or `Decided` False while a person is to decide.
pub fn decision_conditions(decision: Option<&Decision>, generation: Option<i64>) -> Vec<Condition> {
    match decision {
        Some(d) => vec![decision_condition(d, generation)],
        None => vec![condition(
            "Decided",
            false,
            "AwaitingDecision",
            "no auto-approval rule approves it (or the organisation's details are not yet known to the platform); a platform admin decides",
            generation,
        )],
    }
}

/// The request's status: its decision (kept as it is), the decision's condition, and once
/// approved whether its Tenancy is made and Ready.
pub fn status(
    req: &TenancyRequest,
    decision: Option<&Decision>,
    provisioning: &Provisioning,
) -> TenancyRequestStatus {
    let generation = req.metadata.generation;
    let name = &req.spec.tenancy_name;
    let mut conditions = decision_conditions(decision, generation);
    let (provisioned, tenancy) = match provisioning {
        Provisioning::NotApproved => (None, None),
        Provisioning::Missing => (
            Some(condition(
                "Provisioned",
                false,
                "Creating",
                format!("creating the Tenancy {name}"),
                generation,
            )),
            None,
        ),
        Provisioning::Made { ready: true, .. } => (
            Some(condition("Provisioned", true, "Ready", format!("the Tenancy {name} is Ready"), generation)),
            Some(name.clone()),
        ),
        Provisioning::Made { ready: false, message } => {
            let message = if message.is_empty() {
                format!("the Tenancy {name} is not Ready yet")
            } else {
                format!("the Tenancy {name} is not Ready yet: {message}")
            };
            (Some(condition("Provisioned", false, "Provisioning", message, generation)), Some(name.clone()))
        }
        Provisioning::Gone => (
            Some(condition(
                "Provisioned",
                false,
                "TenancyDeleted",
                format!("the Tenancy {name} made from this request was deleted; it is not made again"),
                generation,
            )),
            // Still the record of what the request made: it is what keeps it from being made again.
            Some(name.clone()),
        ),
        Provisioning::Taken => (
            Some(condition(
                "Provisioned",
                false,
                "NameTaken",
                format!("a Tenancy named {name} exists that this request did not make; it is left alone"),
                generation,
            )),
            None,
        ),
    };
    conditions.extend(provisioned);
    let previous = req.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    carry_transition_times(&mut conditions, previous);
    TenancyRequestStatus { conditions, decision: decision.cloned(), tenancy }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::fixtures::{request, tenancy_with};

    #[test]
    fn provisioning_follows_the_decision_and_whose_tenancy_it_is() {
        let pending = request("r1", "sandbox-a", None);
        let approved = request("r1", "sandbox-a", Some(Outcome::Approved));
        let denied = request("r1", "sandbox-a", Some(Outcome::Denied));
        let ours_ready = tenancy_with("sandbox-a", Some("requests/r1"), true);
        let ours_pending = tenancy_with("sandbox-a", Some("requests/r1"), false);
        let someone_elses = tenancy_with("sandbox-a", None, true);
        let other_request = tenancy_with("sandbox-a", Some("requests/r2"), true);
        let mut made_before = approved.clone();
        if let Some(s) = made_before.status.as_mut() {
            s.tenancy = Some("sandbox-a".into());
        }
        let table = [
            ("pending", &pending, None, Provisioning::NotApproved),
            ("denied", &denied, Some(&ours_ready), Provisioning::NotApproved),
            ("approved, nothing yet", &approved, None, Provisioning::Missing),
            (
                "approved, made and ready",
                &approved,
                Some(&ours_ready),
                Provisioning::Made { ready: true, message: String::new() },
            ),
            (
                "approved, made",
                &approved,
                Some(&ours_pending),
                Provisioning::Made { ready: false, message: "creating".into() },
            ),
            ("a tenancy not from a request", &approved, Some(&someone_elses), Provisioning::Taken),
            ("a tenancy from another request", &approved, Some(&other_request), Provisioning::Taken),
            ("made once, deleted since", &made_before, None, Provisioning::Gone),
        ];
        for (name, req, observed, want) in table {
            assert_eq!(provisioning(req, observed), want, "{name}");
        }
    }

    #[test]
    fn the_status_keeps_the_decision_and_says_where_the_tenancy_stands() {
        let approved = request("r1", "sandbox-a", Some(Outcome::Approved));
        let d = decision(&approved).cloned();
        let s = status(&approved, d.as_ref(), &Provisioning::Made { ready: true, message: String::new() });
        assert_eq!(s.decision, d);
        assert_eq!(s.tenancy.as_deref(), Some("sandbox-a"));
        let types: Vec<(&str, &str, &str)> =
            s.conditions.iter().map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str())).collect();
        assert_eq!(types, [("Approved", "True", "Approved"), ("Provisioned", "True", "Ready")]);
        let s = status(&approved, d.as_ref(), &Provisioning::Taken);
        assert_eq!((s.tenancy, s.conditions[1].reason.as_str()), (None, "NameTaken"));
        // Gone, the status still names it: the next reconcile must see Gone again, not Missing.
        let mut gone = approved.clone();
        gone.status = Some(status(&approved, d.as_ref(), &Provisioning::Gone));
        assert_eq!(gone.status.as_ref().unwrap().tenancy.as_deref(), Some("sandbox-a"));
        assert_eq!(provisioning(&gone, None), Provisioning::Gone);
        let pending = request("r1", "sandbox-a", None);
        let waiting = status(&pending, None, &Provisioning::NotApproved);
        assert_eq!(
            (waiting.conditions.len(), waiting.conditions[0].reason.as_str()),
            (1, "AwaitingDecision")
        );
        assert_eq!((waiting.decision, waiting.tenancy), (None, None));
    }

    #[test]
    fn only_an_organisation_known_by_its_sector_and_name_is_known() {
        let known = std::sync::Arc::new(tenancy_with("north-a", None, true));
        let asked = request("r1", "sandbox-a", None).spec.tenancy.unwrap();
        assert!(organisation_known(&asked, std::slice::from_ref(&known)));
        let mut claimed = asked.clone();
        claimed.organisation.sector = commons_crds::Sector::Health;
        assert!(!organisation_known(&claimed, std::slice::from_ref(&known)), "a sector claimed, not known");
        assert!(!organisation_known(&asked, &[]), "a first tenancy is a person's decision");
    }

    #[test]
    fn a_policy_decision_names_its_rule_and_an_approved_tenancy_carries_its_request() {
        let d = by_policy("council-sandbox", "sector local-government", jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(d.decided_by, "policy:council-sandbox");
        assert_eq!(decision_condition(&d, Some(1)).reason, "AutoApproved");
        let r = request("r1", "sandbox-a", Some(Outcome::Approved));
        let t = tenancy(&r, r.spec.tenancy.as_ref().unwrap());
        assert_eq!(t.name_any(), "sandbox-a");
        assert_eq!(t.annotations().get(FROM_REQUEST).map(String::as_str), Some("requests/r1"));
    }
}

//! What the meter sees of a pod, claim, Service or node (pure): who it is charged to, what it holds
//! and when it is billable, by the rules of docs/metering.md. Shares of shared services are in
//! `shares_observe`.

use commons_crds::Tenancy;
use commons_crds::labels;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod, Service};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::interval::{self, Seen};
use super::tracker::{Observation, Span};
use crate::admission::usage::{self, resources};
use crate::ledger::{Attribution, Held, Kind};
use crate::tenancy::quota::Amounts;
use crate::watch::owned_by;

/// A Unix-millisecond instant.
pub fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The tenancy a namespace was made for (by its owner reference, which tenants cannot set), and
/// that tenancy's organisation as it stands now. `None` for namespaces no tenancy owns: what runs
/// there is not charged to anyone.
pub fn attribution(
    namespace: &str,
    hosted_service: Option<&str>,
    namespaces: &Store<Namespace>,
    tenancies: &Store<Tenancy>,
) -> Option<Attribution> {
    let ns = namespaces.get(&ObjectRef::new(namespace))?;
    let owner = owned_by::<Tenancy, Namespace>(ns.as_ref())?;
    let tenancy = tenancies.get(&owner)?;
    Some(of_tenancy(&tenancy, hosted_service.unwrap_or_default()))
}

/// Who pays for what a tenancy holds (in its HostedService `hosted_service`, or none if empty).
pub fn of_tenancy(tenancy: &Tenancy, hosted_service: &str) -> Attribution {
    let org = &tenancy.spec.organisation;
    Attribution {
        tenancy: tenancy.name_any(),
        organisation: org.id.clone(),
        organisation_name: org.display_name.clone(),
        sector: org.sector.to_string(),
        cost_centre: org.cost_centre.clone(),
        hosted_service: hosted_service.to_owned(),
    }
}

fn milli(amounts: &Amounts, name: &str) -> i64 {
    let m = amounts.get(name).copied().unwrap_or_default().0;
    i64::try_from(m.max(0)).unwrap_or(i64::MAX)
}

/// A pod's CPU and memory (its effective requests, as the quota counts them, resizes included)
/// and its billable span (`interval::billable`); `deleted_at` when its deletion was just observed.
pub fn pod(p: &Pod, attribution: Attribution, deleted_at: Option<Timestamp>) -> Observation {
    let amounts = usage::pod(p);
    let held = Held {
        cpu_milli: milli(&amounts, resources::CPU),
        memory_milli: milli(&amounts, resources::MEMORY),
        ..Held::default()
    };
    let seen = deleted_at.map_or(Seen::Present, Seen::Deleted);
    let span = match interval::billable(p, seen) {
        None => Span::Never,
        Some(b) => match b.end {
            None => Span::Since(ms(b.start)),
            Some(end) => Span::Ended { start_ms: ms(b.start), end_ms: ms(end) },
        },
    };
    observation(Kind::Pod, p, attribution, held, span)
}

/// A claim's requested storage, billable from its creation for as long as it exists.
pub fn claim(c: &PersistentVolumeClaim, attribution: Attribution) -> Observation {
    let held = Held {
        storage_milli: milli(&usage::persistent_volume_claim(c), resources::STORAGE),
        ..Held::default()
    };
    let span = match c.creation_timestamp() {
        Some(created) => Span::Since(ms(created.0)),
        None => Span::Never,
    };
    observation(Kind::Claim, c, attribution, held, span)
}

/// A Service's load balancer, billable while it is of type LoadBalancer: from its creation when it
/// was created after `watermark_ms` (the last instant the meter's record was complete), otherwise
/// from `now_ms`, the instant it is seen to be one (its type changed while it existed, and time
/// nobody observed is not billed).
pub fn service(s: &Service, attribution: Attribution, watermark_ms: i64, now_ms: i64) -> Observation {
    let lbs = milli(&usage::service(s), resources::LOAD_BALANCERS);
    let held = Held { load_balancer_milli: lbs, ..Held::default() };
    let span = if lbs == 0 { Span::Never } else { from_creation(s, watermark_ms, now_ms) };
    observation(Kind::LoadBalancer, s, attribution, held, span)
}

/// Billable from the object's creation when it was created after `watermark_ms` (the last instant
/// the meter's record was complete), otherwise from `now_ms`: time nobody observed is not billed.
pub(super) fn from_creation<K: kube::Resource>(obj: &K, watermark_ms: i64, now_ms: i64) -> Span {
    match obj.meta().creation_timestamp.as_ref().map(|t| ms(t.0)) {
        Some(c) if c >= watermark_ms => Span::Since(c),
        _ => Span::Since(now_ms),
    }
}

/// A node's allocatable CPU and memory (what it offers pods), charged to no tenancy (an empty
/// attribution): what no pod reserved of it is the platform's unallocated capacity. Billable as a
/// load balancer is ([`from_creation`]) until its deletion is seen.
pub fn node(n: &Node, watermark_ms: i64, now_ms: i64) -> Observation {
    let allocatable = crate::quantity::amounts(n.status.as_ref().and_then(|s| s.allocatable.as_ref()));
    let held = Held {
        cpu_milli: milli(&allocatable, "cpu"),
        memory_milli: milli(&allocatable, "memory"),
        ..Held::default()
    };
    observation(Kind::Node, n, Attribution::default(), held, from_creation(n, watermark_ms, now_ms))
}

/// The HostedService a pod belongs to, from the label Commons puts on its pods, when a
/// HostedService of that name is in the pod's namespace (anyone who can make pods can set the
/// label; it cannot name what is not there).
pub fn hosted_service<'a>(p: &'a Pod, hosted: &Store<commons_crds::HostedService>) -> Option<&'a str> {
    let name = p.labels().get(labels::HOSTED_SERVICE)?;
    let ns = p.namespace()?;
    hosted.get(&ObjectRef::new(name).within(&ns)).map(|_| name.as_str())
}

/// An observation of `obj`, by its uid, namespace (empty for a cluster-scoped object) and name.
pub(super) fn observation<K: kube::Resource>(
    kind: Kind,
    obj: &K,
    attribution: Attribution,
    held: Held,
    span: Span,
) -> Observation {
    Observation {
        kind,
        uid: obj.meta().uid.clone().unwrap_or_default(),
        namespace: obj.meta().namespace.clone().unwrap_or_default(),
        name: obj.meta().name.clone().unwrap_or_default(),
        attribution,
        held,
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn who() -> Attribution {
        Attribution { tenancy: "t".into(), ..Attribution::default() }
    }

    #[test]
    fn a_running_pod_holds_its_requests_since_its_first_container_started() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "t-app", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2026-11-02T10:00:00Z"}}}]}
        }))
        .unwrap();
        let o = pod(&p, who(), None);
        assert_eq!((o.held.cpu_milli, o.held.memory_milli), (250, 1000 * (1 << 30)));
        assert_eq!(o.span, Span::Since(ms("2026-11-02T10:00:00Z".parse().unwrap())));
        let gone: Timestamp = "2026-11-02T11:00:00Z".parse().unwrap();
        let o = pod(&p, who(), Some(gone));
        assert!(matches!(o.span, Span::Ended { end_ms, .. } if end_ms == ms(gone)));
    }

    #[test]
    fn a_service_bills_from_creation_only_if_created_while_watched() {
        let s: Service = serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "t-app", "uid": "u2", "creationTimestamp": "2026-11-02T10:00:00Z"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}
        }))
        .unwrap();
        let created = ms("2026-11-02T10:00:00Z".parse().unwrap());
        assert_eq!(service(&s, who(), created - 1, created + 5_000).span, Span::Since(created));
        assert_eq!(service(&s, who(), created + 1, created + 5_000).span, Span::Since(created + 5_000));
        let mut plain = s.clone();
        plain.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert_eq!(service(&plain, who(), 0, created).span, Span::Never);
    }

    fn a_node(created: &str, allocatable: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "uid": "u4", "creationTimestamp": created},
            "status": {"allocatable": allocatable, "capacity": {"cpu": "8", "memory": "32Gi"}}
        }))
        .unwrap()
    }

    #[test]
    fn a_node_holds_its_allocatable_charged_to_no_tenancy() {
        let cases = [
            (json!({"cpu": "3920m", "memory": "15Gi", "pods": "110"}), 3_920, 15 * 1000 * (1 << 30)),
            (json!({"cpu": "4", "memory": "1536Mi"}), 4_000, 1536 * 1000 * (1 << 20)),
            (json!({"memory": "1Gi"}), 0, 1000 * (1 << 30)),
            (json!({}), 0, 0),
        ];
        for (allocatable, cpu, memory) in cases {
            let o = node(&a_node("2026-11-02T10:00:00Z", allocatable.clone()), 0, 0);
            assert_eq!(
                o.held,
                Held { cpu_milli: cpu, memory_milli: memory, ..Held::default() },
                "{allocatable}"
            );
            assert_eq!((o.kind, o.namespace.as_str(), o.name.as_str()), (Kind::Node, "", "n1"));
            assert_eq!(o.attribution, Attribution::default(), "charged to no tenancy");
        }
    }

    #[test]
    fn a_node_bills_from_creation_only_if_created_while_watched() {
        let created = ms("2026-11-02T10:00:00Z".parse().unwrap());
        let n = a_node("2026-11-02T10:00:00Z", json!({"cpu": "4", "memory": "16Gi"}));
        let cases = [
            ("created after the watermark", created - 1, Span::Since(created)),
            ("created at the watermark", created, Span::Since(created)),
            ("created before the watermark: from now", created + 1, Span::Since(created + 60_000)),
        ];
        for (name, watermark, want) in cases {
            assert_eq!(node(&n, watermark, created + 60_000).span, want, "{name}");
        }
    }

    #[test]
    fn a_claim_holds_its_requested_storage_from_creation() {
        let c: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "t-app", "uid": "u3", "creationTimestamp": "2026-11-02T10:00:00Z"},
            "spec": {"resources": {"requests": {"storage": "10Gi"}}}
        }))
        .unwrap();
        let o = claim(&c, who());
        assert_eq!(o.held.storage_milli, 10 * 1000 * (1 << 30));
        assert_eq!(o.span, Span::Since(ms("2026-11-02T10:00:00Z".parse().unwrap())));
    }
}

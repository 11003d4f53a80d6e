//! Reconciling one NetworkSegment: membership → policies in members' namespaces → status.

use std::sync::Arc;

use crate::events::Reason;
use commons_crds::labels;
use commons_crds::network_segment::{NetworkSegment, NetworkSegmentStatus};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::Context;
use super::desired::{self, Membership};
use crate::apply::{apply_if_changed, delete};
use crate::conditions::{carry_transition_times, condition};
use crate::error::{Error, Result};

/// Waits until every store has had its first full list.
async fn stores_ready(ctx: &Context) -> Result<()> {
    crate::watch::synced(&[&ctx.tenancies, &ctx.segments, &ctx.namespaces, &ctx.policies]).await
}

/// Reconciles one NetworkSegment.
pub async fn reconcile(segment: Arc<NetworkSegment>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_duration.with_label_values(&["networksegment"]).start_timer();
    if segment.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    stores_ready(&ctx).await?;
    let name = segment.name_any();
    let tenancies = ctx.tenancies.state();
    let segments = ctx.segments.state();
    let namespace_ours = |tenancy: &str, ns: &str| {
        ctx.namespaces.get(&ObjectRef::new(ns)).is_some_and(|n| {
            n.metadata.deletion_timestamp.is_none()
                && crate::watch::is_managed(n.as_ref())
                && n.labels().get(labels::TENANCY).map(String::as_str) == Some(tenancy)
        })
    };
    let wanted = desired::policies(&segment, &segments, &tenancies, namespace_ours, &ctx.cluster_networks);
    for p in &wanted {
        let ns = p.namespace().unwrap_or_default();
        let observed = ctx.policies.get(&ObjectRef::new(&p.name_any()).within(&ns));
        apply_if_changed(&Api::<NetworkPolicy>::namespaced(ctx.client.clone(), &ns), p, observed.as_deref())
            .await?;
    }
    // Paths of members that left, or namespaces that went, are closed.
    let uid = segment.uid();
    for p in ctx.policies.state() {
        // The segment's own (its paths carry its label too, which the store does not keep).
        let ours =
            p.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref());
        let still = wanted.iter().any(|w| w.name_any() == p.name_any() && w.namespace() == p.namespace());
        if ours && !still {
            let ns = p.namespace().unwrap_or_default();
            delete(&Api::<NetworkPolicy>::namespaced(ctx.client.clone(), &ns), &p.name_any()).await?;
        }
    }

    let membership = desired::membership(&segment, &tenancies);
    let findings = desired::range_findings(&segment, &ctx.cluster_networks);
    let status = build_status(&segment, &membership, wanted.len(), &findings);
    announce(&ctx, &segment, &membership, &status).await;
    if segment.status.as_ref() != Some(&status) {
        let api = Api::<NetworkSegment>::all(ctx.client.clone());
        crate::apply::write_status(&api, &name, segment.status.as_ref(), &status).await?;
    }
    Ok(Action::requeue(ctx.resync))
}

/// The condition saying whether the segment's outside ranges stay outside the cluster.
pub const RANGES: &str = "RangesOutsideCluster";
/// Its reason when a range had to be changed.
pub const CLUSTER_NETWORK_EXCLUDED: &str = "ClusterNetworkExcluded";

fn build_status(
    segment: &NetworkSegment,
    m: &Membership,
    policies: usize,
    findings: &[String],
) -> NetworkSegmentStatus {
    let generation = segment.metadata.generation;
    let mut conditions = vec![
        condition(
            "Ready",
            true,
            "Reconciled",
            format!("{} members, {} refused, {policies} policies applied", m.members.len(), m.refused.len()),
            generation,
        ),
        match findings {
            [] => condition(
                RANGES,
                true,
                "OutsideClusterNetworks",
                "every outside range is applied as written",
                generation,
            ),
            _ => condition(RANGES, false, CLUSTER_NETWORK_EXCLUDED, findings.join("; "), generation),
        },
    ];
    if let Some(previous) = segment.status.as_ref() {
        carry_transition_times(&mut conditions, &previous.conditions);
    }
    NetworkSegmentStatus {
        observed_generation: generation,
        conditions,
        members: m.members.clone(),
        member_count: i32::try_from(m.members.len()).unwrap_or(i32::MAX),
        refused: m.refused.clone(),
        refused_count: i32::try_from(m.refused.len()).unwrap_or(i32::MAX),
        policies: i32::try_from(policies).unwrap_or(i32::MAX),
    }
}

async fn announce(ctx: &Context, segment: &NetworkSegment, m: &Membership, status: &NetworkSegmentStatus) {
    let before = segment.status.clone().unwrap_or_default();
    let mut events = Vec::new();
    let ranges = |s: &NetworkSegmentStatus| {
        s.conditions.iter().find(|c| c.type_ == RANGES && c.status == "False").map(|c| c.message.clone())
    };
    if let Some(message) = ranges(status).filter(|now| ranges(&before).as_ref() != Some(now)) {
        events.push((Reason::ClusterNetworkExcluded, message));
    }
    for t in m.members.iter().filter(|t| !before.members.contains(t)) {
        events.push((Reason::MemberJoined, format!("tenancy {t} joined the segment")));
    }
    for t in before.members.iter().filter(|t| !m.members.contains(t)) {
        events.push((Reason::MemberLeft, format!("tenancy {t} left the segment; its paths are closed")));
    }
    for r in m
        .refused
        .iter()
        .filter(|r| !before.refused.iter().any(|b| b.tenancy == r.tenancy && b.reason == r.reason))
    {
        events.push((Reason::MemberRefused, format!("tenancy {}: {}", r.tenancy, r.message)));
    }
    for (reason, note) in events {
        crate::events::publish(&ctx.recorder, segment, reason, "Admission", note).await;
    }
}

/// What happens after a failed reconcile: count it and try again soon.
pub fn error_policy(segment: Arc<NetworkSegment>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::error::retry_after_failure("networksegment", &segment.name_any(), error, &ctx.metrics)
}

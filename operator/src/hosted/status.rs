//! A HostedService's status (pure): what its Deployment reports, in the service's own terms —
//! Admitted, Ready and Progressing with reasons a person can act on.

use commons_crds::hosted_service::{HostedService, HostedServiceStatus};
use k8s_openapi::api::apps::v1::Deployment;

use super::admit::Refusal;
use super::desired;
use crate::conditions::{carry_transition_times, condition};

/// Condition types.
pub const ADMITTED: &str = "Admitted";
/// Condition types.
pub const READY: &str = "Ready";
/// Condition types.
pub const PROGRESSING: &str = "Progressing";

/// Why the service is not ready, or is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyReason {
    /// Every copy asked for is ready.
    Ready,
    /// Copies are starting.
    ReplicasNotReady,
    /// Pods cannot be created because the tenancy's quota is used up.
    QuotaExceeded,
    /// Pods cannot be created for another reason (a policy of the tenancy, for example).
    PodsRefused,
    /// The tenancy is suspended: no copy runs.
    TenancySuspended,
    /// No copy was asked for.
    ScaledToZero,
    /// The service is not admitted.
    NotAdmitted,
}

impl ReadyReason {
    fn as_str(self) -> &'static str {
        match self {
            ReadyReason::Ready => "Ready",
            ReadyReason::ReplicasNotReady => "ReplicasNotReady",
            ReadyReason::QuotaExceeded => "QuotaExceeded",
            ReadyReason::PodsRefused => "PodsRefused",
            ReadyReason::TenancySuspended => "TenancySuspended",
            ReadyReason::ScaledToZero => "ScaledToZero",
            ReadyReason::NotAdmitted => "NotAdmitted",
        }
    }
}

/// What the reconcile found.
#[derive(Clone, Debug, PartialEq)]
pub enum Found<'a> {
    /// Refused: nothing runs.
    Refused(Refusal, String),
    /// Admitted; the Deployment as stored (`None` until it is seen), whether this reconcile has
    /// just written it (the stored one then predates what it was asked), and whether the tenancy
    /// is suspended.
    Running { deployment: Option<&'a Deployment>, deployment_written: bool, suspended: bool },
}

/// Whether a HostedService's status says it is Ready (what its consumers and the catalogue show).
pub fn is_ready(hs: &HostedService) -> bool {
    hs.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == READY && c.status == "True"))
}

/// Whether a pod-creation failure the Deployment reports is the tenancy's quota (the webhook's
/// words, or the ResourceQuota admission's).
fn is_quota(message: &str) -> bool {
    ["exceeds the tenancy quota", "exceeds the namespace's current share", "exceeded quota"]
        .iter()
        .any(|m| message.contains(m))
}

fn deployment_condition<'a>(
    d: &'a Deployment,
    type_: &str,
) -> Option<&'a k8s_openapi::api::apps::v1::DeploymentCondition> {
    d.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// The status of `hs` given what was found.
pub fn build(hs: &HostedService, found: &Found<'_>) -> HostedServiceStatus {
    let generation = hs.metadata.generation;
    let mut status =
        HostedServiceStatus { observed_generation: generation, ..HostedServiceStatus::default() };
    let mut conditions = match found {
        Found::Refused(refusal, message) => vec![
            condition(ADMITTED, false, refusal.as_str(), message.clone(), generation),
            condition(
                READY,
                false,
                ReadyReason::NotAdmitted.as_str(),
                "the service is not admitted; nothing runs",
                generation,
            ),
            condition(
                PROGRESSING,
                false,
                ReadyReason::NotAdmitted.as_str(),
                "the service is not admitted",
                generation,
            ),
        ],
        Found::Running { deployment, deployment_written, suspended } => {
            let wanted = if *suspended { 0 } else { hs.spec.replicas };
            let s = deployment.and_then(|d| d.status.as_ref());
            status.replicas = s.and_then(|s| s.replicas).unwrap_or(0);
            status.ready_replicas = s.and_then(|s| s.ready_replicas).unwrap_or(0);
            status.updated_replicas = s.and_then(|s| s.updated_replicas).unwrap_or(0);
            status.selector = Some(desired::selector_string(hs));
            if !hs.spec.ports.is_empty() {
                status.endpoint = Some(desired::endpoint(hs));
            }
            let (ready, reason, message) = readiness(*deployment, wanted, *suspended, status.ready_replicas);
            let (progressing, p_reason, p_message) = progress(*deployment, *deployment_written, wanted);
            vec![
                condition(ADMITTED, true, "Admitted", "the service runs in its tenancy", generation),
                condition(READY, ready, reason.as_str(), message, generation),
                condition(PROGRESSING, progressing, p_reason, p_message, generation),
            ]
        }
    };
    if let Some(previous) = hs.status.as_ref() {
        carry_transition_times(&mut conditions, &previous.conditions);
    }
    status.conditions = conditions;
    status
}

fn readiness(
    d: Option<&Deployment>,
    wanted: i32,
    suspended: bool,
    ready: i32,
) -> (bool, ReadyReason, String) {
    if suspended {
        return (
            false,
            ReadyReason::TenancySuspended,
            "the tenancy is suspended: the service is scaled to zero until it is resumed".into(),
        );
    }
    if wanted == 0 {
        return (false, ReadyReason::ScaledToZero, "spec.replicas is 0".into());
    }
    if ready >= wanted {
        return (true, ReadyReason::Ready, format!("{ready} of {wanted} replicas ready"));
    }
    let failure = d
        .and_then(|d| deployment_condition(d, "ReplicaFailure"))
        .filter(|c| c.status == "True")
        .and_then(|c| c.message.clone());
    match failure {
        Some(m) if is_quota(&m) => (false, ReadyReason::QuotaExceeded, m),
        Some(m) => (false, ReadyReason::PodsRefused, m),
        None => (false, ReadyReason::ReplicasNotReady, format!("{ready} of {wanted} replicas ready")),
    }
}

fn progress(d: Option<&Deployment>, written: bool, wanted: i32) -> (bool, &'static str, String) {
    let Some(d) = d else {
        return (true, "Creating", "the Deployment is being created".into());
    };
    if written {
        // What the store holds is the Deployment before this write: its rollout, however
        // complete, is the previous spec's.
        return (true, "RollingOut", "the Deployment has not yet acted on the latest spec".into());
    }
    let s = d.status.clone().unwrap_or_default();
    if let Some(c) = deployment_condition(d, "Progressing")
        .filter(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    {
        return (false, "ProgressDeadlineExceeded", c.message.clone().unwrap_or_default());
    }
    let spec_replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let seen = s.observed_generation >= d.metadata.generation;
    let updated = s.updated_replicas.unwrap_or(0);
    let total = s.replicas.unwrap_or(0);
    let available = s.available_replicas.unwrap_or(0);
    if !seen || spec_replicas != wanted {
        return (true, "RollingOut", "the Deployment has not yet acted on the latest spec".into());
    }
    if updated < wanted || total > updated || available < updated {
        return (
            true,
            "RollingOut",
            format!("{updated} of {wanted} replicas updated, {available} available, {total} in all"),
        );
    }
    (false, "RolloutComplete", format!("{updated} of {wanted} replicas run the latest spec"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosted::fixtures::hosted;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use kube::api::ObjectMeta;

    fn deployment(replicas: i32, ready: i32, updated: i32, failure: Option<&str>) -> Deployment {
        Deployment {
            metadata: ObjectMeta { generation: Some(2), ..ObjectMeta::default() },
            spec: Some(DeploymentSpec { replicas: Some(replicas), ..DeploymentSpec::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(2),
                replicas: Some(updated.max(ready)),
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                updated_replicas: Some(updated),
                conditions: failure.map(|m| {
                    vec![DeploymentCondition {
                        type_: "ReplicaFailure".into(),
                        status: "True".into(),
                        reason: Some("FailedCreate".into()),
                        message: Some(m.into()),
                        ..DeploymentCondition::default()
                    }]
                }),
                ..DeploymentStatus::default()
            }),
        }
    }

    fn reason(s: &HostedServiceStatus, type_: &str) -> (String, String) {
        let c: &Condition = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn ready_and_progressing_by_table() {
        let quota = "pods \"x\" is forbidden: admission webhook \"quota.commons.dev\" denied the request: pod in namespace \"t-a\" of tenancy \"t\" exceeds the tenancy quota: cpu requested 1";
        let hs2 = hosted("s", "t-a").replicas(2).port("http", 80, None).build();
        let cases = [
            ("all ready", deployment(2, 2, 2, None), false, ("True", "Ready"), ("False", "RolloutComplete")),
            (
                "starting",
                deployment(2, 1, 2, None),
                false,
                ("False", "ReplicasNotReady"),
                ("True", "RollingOut"),
            ),
            (
                "quota",
                deployment(2, 0, 0, Some(quota)),
                false,
                ("False", "QuotaExceeded"),
                ("True", "RollingOut"),
            ),
            (
                "policy",
                deployment(2, 0, 0, Some("image not allowed")),
                false,
                ("False", "PodsRefused"),
                ("True", "RollingOut"),
            ),
            (
                "suspended",
                deployment(0, 0, 0, None),
                true,
                ("False", "TenancySuspended"),
                ("False", "RolloutComplete"),
            ),
            (
                "suspension not yet applied",
                deployment(2, 2, 2, None),
                true,
                ("False", "TenancySuspended"),
                ("True", "RollingOut"),
            ),
        ];
        for (name, d, suspended, ready, progressing) in cases {
            let s =
                build(&hs2, &Found::Running { deployment: Some(&d), deployment_written: false, suspended });
            assert_eq!(reason(&s, READY), (ready.0.into(), ready.1.into()), "{name}");
            assert_eq!(reason(&s, PROGRESSING), (progressing.0.into(), progressing.1.into()), "{name}");
            assert_eq!(reason(&s, ADMITTED), ("True".into(), "Admitted".into()));
            assert_eq!(s.endpoint.as_deref(), Some("s.t-a.svc.cluster.local"));
            assert_eq!(s.selector.as_deref(), Some("commons.dev/hosted-service=s"));
        }
        let quota_status = build(
            &hs2,
            &Found::Running {
                deployment: Some(&deployment(2, 0, 0, Some(quota))),
                deployment_written: false,
                suspended: false,
            },
        );
        let c = quota_status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert!(
            c.message.contains("exceeds the tenancy quota"),
            "the webhook's words are shown: {}",
            c.message
        );
    }

    #[test]
    fn a_deployment_just_written_is_rolling_out_whatever_the_stored_one_says() {
        let hs = hosted("s", "t-a").replicas(2).build();
        let done = deployment(2, 2, 2, None);
        let table = [(false, ("False", "RolloutComplete")), (true, ("True", "RollingOut"))];
        for (written, want) in table {
            let s = build(
                &hs,
                &Found::Running { deployment: Some(&done), deployment_written: written, suspended: false },
            );
            assert_eq!(reason(&s, PROGRESSING), (want.0.into(), want.1.into()), "written: {written}");
            assert_eq!(reason(&s, READY), ("True".into(), "Ready".into()), "the running copies still serve");
        }
    }

    #[test]
    fn a_refused_service_reports_why_and_runs_nothing() {
        let hs = hosted("s", "plain").build();
        let s = build(
            &hs,
            &Found::Refused(Refusal::NotInTenancy, "namespace plain does not belong to a Tenancy".into()),
        );
        assert_eq!(reason(&s, ADMITTED), ("False".into(), "NotInTenancy".into()));
        assert_eq!(reason(&s, READY), ("False".into(), "NotAdmitted".into()));
        assert_eq!((s.replicas, s.endpoint, s.selector), (0, None, None));
    }
}

//! When a pod is billable (pure): the rule of docs/metering.md, "What is billed, from when to
//! when", applied to a pod as the apiserver records it.
//!
//! - **Start**: the earliest instant any of its containers (init containers and sidecars included)
//!   is recorded as started (`state.running.startedAt`, or `startedAt` of a terminated state, the
//!   current or the last one). A pod none of whose containers ever started (pending, unschedulable,
//!   image never pulled) is never billed.
//! - **End**: for a pod that finished (phase Succeeded or Failed), the latest `finishedAt` among its
//!   containers; for a pod deleted while running, the instant the deletion was observed (the
//!   caller's `gone_at`); a pod whose end was not observed (it went while Commons was not
//!   watching) ends at the last instant it was seen, marked estimated.
//! - Restarts do not interrupt it: the pod holds its requests on the node throughout.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod};

/// A pod's billable interval, as far as it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Billable {
    /// From.
    pub start: Timestamp,
    /// Until, when it ended.
    pub end: Option<Timestamp>,
    /// Whether the end is the last time the pod was seen rather than a recorded end.
    pub estimated: bool,
}

/// How the caller last knew the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// It exists now.
    Present,
    /// Its deletion was observed at this instant.
    Deleted(Timestamp),
    /// It is gone and its deletion was not observed; it was last seen at this instant.
    LastSeen(Timestamp),
}

fn statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let s = pod.status.as_ref();
    s.and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(s.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten())
}

fn started(state: Option<&ContainerState>) -> Option<Timestamp> {
    let state = state?;
    state
        .running
        .as_ref()
        .and_then(|r| r.started_at.as_ref())
        .or_else(|| state.terminated.as_ref().and_then(|t| t.started_at.as_ref()))
        .map(|t| t.0)
}

fn finished(state: Option<&ContainerState>) -> Option<Timestamp> {
    state?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0)
}

/// The pod's billable interval; `None` when it never ran.
pub fn billable(pod: &Pod, seen: Seen) -> Option<Billable> {
    let start = statuses(pod)
        .flat_map(|c| [started(c.state.as_ref()), started(c.last_state.as_ref())])
        .flatten()
        .min()?;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let finished_at = statuses(pod).filter_map(|c| finished(c.state.as_ref())).max();
    let (end, estimated) = match (phase, seen) {
        (Some("Succeeded" | "Failed"), _) if finished_at.is_some() => (finished_at, false),
        (_, Seen::Present) => (None, false),
        (_, Seen::Deleted(at)) => (Some(at), false),
        (_, Seen::LastSeen(at)) => (Some(at), true),
    };
    // An end before the start (clocks of different machines) bills nothing, never negative time.
    let end = end.map(|e| e.max(start));
    Some(Billable { start, end, estimated })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn running(since: &str) -> ContainerState {
        ContainerState {
            running: Some(ContainerStateRunning { started_at: Some(Time(at(since))) }),
            ..ContainerState::default()
        }
    }

    fn terminated(from: &str, to: &str) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                started_at: Some(Time(at(from))),
                finished_at: Some(Time(at(to))),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }
    }

    fn waiting() -> ContainerState {
        ContainerState { waiting: Some(ContainerStateWaiting::default()), ..ContainerState::default() }
    }

    fn pod(
        phase: &str,
        init: Vec<ContainerState>,
        app: Vec<(ContainerState, Option<ContainerState>)>,
    ) -> Pod {
        let status = |state: ContainerState, last: Option<ContainerState>| ContainerStatus {
            name: "c".into(),
            state: Some(state),
            last_state: last,
            ..ContainerStatus::default()
        };
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                init_container_statuses: Some(init.into_iter().map(|s| status(s, None)).collect()),
                container_statuses: Some(app.into_iter().map(|(s, l)| status(s, l)).collect()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn billable_intervals_by_table() {
        let t0 = "2026-11-03T10:00:00Z";
        let deleted = Seen::Deleted(at("2026-11-03T12:00:00Z"));
        let cases = [
            (
                "running",
                pod("Running", vec![], vec![(running(t0), None)]),
                Seen::Present,
                Some((t0, None, false)),
            ),
            ("pending, never started", pod("Pending", vec![], vec![(waiting(), None)]), Seen::Present, None),
            ("pending, deleted", pod("Pending", vec![], vec![(waiting(), None)]), deleted, None),
            (
                "init container first",
                pod("Running", vec![terminated("2026-11-03T09:59:00Z", t0)], vec![(running(t0), None)]),
                Seen::Present,
                Some(("2026-11-03T09:59:00Z", None, false)),
            ),
            (
                "restarted: from the first start",
                pod(
                    "Running",
                    vec![],
                    vec![(running("2026-11-03T11:00:00Z"), Some(terminated(t0, "2026-11-03T10:59:59Z")))],
                ),
                Seen::Present,
                Some((t0, None, false)),
            ),
            (
                "finished: until the last container finished",
                pod(
                    "Succeeded",
                    vec![],
                    vec![
                        (terminated(t0, "2026-11-03T10:30:00Z"), None),
                        (terminated(t0, "2026-11-03T10:45:00Z"), None),
                    ],
                ),
                deleted,
                Some((t0, Some("2026-11-03T10:45:00Z"), false)),
            ),
            (
                "deleted while running",
                pod("Running", vec![], vec![(running(t0), None)]),
                deleted,
                Some((t0, Some("2026-11-03T12:00:00Z"), false)),
            ),
            (
                "gone unobserved: last seen, estimated",
                pod("Running", vec![], vec![(running(t0), None)]),
                Seen::LastSeen(at("2026-11-03T11:00:00Z")),
                Some((t0, Some("2026-11-03T11:00:00Z"), true)),
            ),
            (
                "failed: its recorded end even if the deletion came later",
                pod("Failed", vec![], vec![(terminated(t0, "2026-11-03T10:05:00Z"), None)]),
                Seen::LastSeen(at("2026-11-03T11:00:00Z")),
                Some((t0, Some("2026-11-03T10:05:00Z"), false)),
            ),
            (
                "an end before the start bills nothing",
                pod("Running", vec![], vec![(running(t0), None)]),
                Seen::Deleted(at("2026-11-03T09:00:00Z")),
                Some((t0, Some(t0), false)),
            ),
        ];
        for (name, pod, seen, want) in cases {
            let want = want.map(|(s, e, est): (&str, Option<&str>, bool)| Billable {
                start: at(s),
                end: e.map(at),
                estimated: est,
            });
            assert_eq!(billable(&pod, seen), want, "{name}");
        }
    }
}

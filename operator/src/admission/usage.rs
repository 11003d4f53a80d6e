//! What one object counts against quota, as the apiserver's own quota evaluators count it.
//!
//! Only the resources a Tenancy's quota can limit are computed: `pods`, `requests.cpu` and
//! `requests.memory` for pods, `requests.storage` for PersistentVolumeClaims and
//! `services.loadbalancers` for Services. Where Kubernetes' rule could count more than this
//! module does, this module errs on the larger side, so the tenancy check is never the looser one.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

use crate::quantity::Milli;
use crate::tenancy::quota::Amounts;

/// Quota resource names this module computes.
pub mod resources {
    /// Pods that are not finished.
    pub const PODS: &str = "pods";
    /// Total CPU requests.
    pub const CPU: &str = "requests.cpu";
    /// Total memory requests.
    pub const MEMORY: &str = "requests.memory";
    /// Total persistent volume storage requests.
    pub const STORAGE: &str = "requests.storage";
    /// Services of type LoadBalancer.
    pub const LOAD_BALANCERS: &str = "services.loadbalancers";
}

/// Whether a pod is charged to quota at `now_seconds` (Unix time): not Succeeded or Failed, and not
/// past the end of its deletion grace period (Kubernetes' `QuotaV1Pod`).
pub fn pod_is_charged(pod: &Pod, now_seconds: i64) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    match (&pod.metadata.deletion_timestamp, pod.metadata.deletion_grace_period_seconds) {
        (Some(at), Some(grace)) => now_seconds <= at.0.as_second().saturating_add(grace),
        _ => true,
    }
}

/// What a pod counts: one pod, and its effective CPU and memory requests (Kubernetes'
/// `PodRequests`: containers and sidecars summed, the largest init step if larger, pod-level
/// requests where set, plus overhead). While an in-place resize is under way a container or
/// sidecar counts the largest of what its spec asks, what the node has allocated and what runs
/// now (only the latter two when the resize is infeasible), from its status.
pub fn pod(pod: &Pod) -> Amounts {
    let mut out = Amounts::new();
    out.insert(resources::PODS.into(), Milli::units(1));
    let Some(spec) = &pod.spec else {
        return out;
    };
    let status = Statuses::of(pod);
    let mut total = Requests::default();
    for c in &spec.containers {
        total.add(&status.effective(c));
    }
    let mut sidecars = Requests::default();
    let mut init_peak = Requests::default();
    for c in spec.init_containers.iter().flatten() {
        if c.restart_policy.as_deref() == Some("Always") {
            let own = status.effective(c);
            // A sidecar runs alongside everything after it.
            total.add(&own);
            sidecars.add(&own);
            init_peak.max(&sidecars);
        } else {
            let mut step = container_requests(c);
            step.add(&sidecars);
            init_peak.max(&step);
        }
    }
    total.max(&init_peak);
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        for key in ["cpu", "memory"] {
            if let Some(q) = pod_level.get(key) {
                total.0.insert(key.into(), quantity(q));
            }
        }
    }
    if let Some(overhead) = &spec.overhead {
        total.add(&Requests::from_map(overhead));
    }
    for (key, name) in [("cpu", resources::CPU), ("memory", resources::MEMORY)] {
        out.insert(name.into(), total.get(key));
    }
    out
}

/// What a PersistentVolumeClaim counts: its storage request, or the storage already allocated
/// to it when that is larger (an expansion that failed or is under way).
pub fn persistent_volume_claim(pvc: &PersistentVolumeClaim) -> Amounts {
    let requested = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(quantity)
        .unwrap_or_default();
    let allocated = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|r| r.get("storage"))
        .map(quantity)
        .unwrap_or_default();
    [(resources::STORAGE.to_owned(), requested.max(allocated))].into()
}

/// What a Service counts: one load balancer when it is of type LoadBalancer.
pub fn service(svc: &Service) -> Amounts {
    let lb = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    [(resources::LOAD_BALANCERS.to_owned(), Milli::units(i64::from(lb)))].into()
}

/// A quantity the apiserver accepted; anything unparseable counts as zero here (the apiserver
/// validates quantities before admission, so this does not happen in practice).
fn quantity(q: &Quantity) -> Milli {
    q.0.parse().unwrap_or_default()
}

fn container_requests(c: &Container) -> Requests {
    c.resources.as_ref().and_then(|r| r.requests.as_ref()).map(Requests::from_map).unwrap_or_default()
}

/// The pod condition that says an in-place resize waits (its reason `Infeasible` when it never
/// can be done).
pub const RESIZE_PENDING: &str = "PodResizePending";

/// What a pod's status says of its containers' resources (Kubernetes'
/// `determineEffectiveRequests`).
struct Statuses<'a> {
    by_name: BTreeMap<&'a str, &'a ContainerStatus>,
    infeasible: bool,
}

impl<'a> Statuses<'a> {
    fn of(pod: &'a Pod) -> Self {
        let status = pod.status.as_ref();
        let by_name = status
            .into_iter()
            .flat_map(|s| {
                s.container_statuses.iter().flatten().chain(s.init_container_statuses.iter().flatten())
            })
            .map(|cs| (cs.name.as_str(), cs))
            .collect();
        let infeasible = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == RESIZE_PENDING))
            .is_some_and(|c| c.reason.as_deref() == Some("Infeasible"));
        Statuses { by_name, infeasible }
    }

    /// A running container's effective requests: its spec's unless its status reports resources.
    fn effective(&self, c: &Container) -> Requests {
        let Some(cs) = self.by_name.get(c.name.as_str()) else {
            return container_requests(c);
        };
        let Some(actuated) = &cs.resources else {
            return container_requests(c);
        };
        let mut out = if self.infeasible { Requests::default() } else { container_requests(c) };
        out.max(&actuated.requests.as_ref().map(Requests::from_map).unwrap_or_default());
        out.max(&cs.allocated_resources.as_ref().map(Requests::from_map).unwrap_or_default());
        out
    }
}

/// CPU and memory requests of one container or step.
#[derive(Debug, Default, Clone)]
struct Requests(BTreeMap<String, Milli>);

impl Requests {
    fn from_map(m: &BTreeMap<String, Quantity>) -> Self {
        Requests(
            m.iter()
                .filter(|(k, _)| matches!(k.as_str(), "cpu" | "memory"))
                .map(|(k, v)| (k.clone(), quantity(v)))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Milli {
        self.0.get(key).copied().unwrap_or_default()
    }
    fn add(&mut self, other: &Requests) {
        for (k, v) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            *e = *e + *v;
        }
    }
    fn max(&mut self, other: &Requests) {
        for (k, v) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_from(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn c(name: &str, cpu: &str, memory: &str) -> serde_json::Value {
        json!({"name": name, "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}})
    }

    fn amounts(p: &Pod) -> (String, String, String) {
        let a = pod(p);
        (a["pods"].to_quantity(), a["requests.cpu"].to_quantity(), a["requests.memory"].to_quantity())
    }

    #[test]
    fn pod_requests_follow_the_kubernetes_rules() {
        // (spec, pods, cpu, memory in bytes)
        let cases = [
            (json!({"containers": [c("a", "100m", "1Mi"), c("b", "250m", "1Mi")]}), "350m", "2097152"),
            (json!({"containers": [{"name": "a", "image": "x"}]}), "0", "0"),
            // An init container larger than the containers sets the peak.
            (
                json!({"initContainers": [c("i", "2", "1Mi")], "containers": [c("a", "100m", "4Mi")]}),
                "2",
                "4194304",
            ),
            // A sidecar adds to the containers and to every later init step.
            (
                json!({"initContainers": [
                    {"name": "s", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m", "memory": "1Mi"}}},
                    c("i", "1", "1Mi")],
                    "containers": [c("a", "100m", "1Mi")]}),
                "1500m",
                "2097152",
            ),
            // Pod-level requests replace the sum; overhead is added.
            (
                json!({"resources": {"requests": {"cpu": "3"}}, "overhead": {"cpu": "10m", "memory": "1Ki"},
                       "containers": [c("a", "100m", "1Mi")]}),
                "3010m",
                "1049600",
            ),
        ];
        for (spec, cpu, memory) in cases {
            let p = pod_from(spec.clone());
            assert_eq!(amounts(&p), ("1".into(), cpu.into(), memory.into()), "{spec}");
        }
    }

    #[test]
    fn a_pod_being_resized_counts_the_largest_of_spec_allocated_and_running() {
        let spec = json!({
            "initContainers": [
                {"name": "s", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                c("i", "50m", "1Mi")],
            "containers": [c("a", "1", "2Mi")]
        });
        let status = |conditions: serde_json::Value| {
            json!({
                "phase": "Running",
                "conditions": conditions,
                // Container a is being resized down from 2 CPUs and up from 1Mi; the sidecar up to 300m.
                "containerStatuses": [{"name": "a", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                    "allocatedResources": {"cpu": "2", "memory": "1Mi"},
                    "resources": {"requests": {"cpu": "2", "memory": "1Mi"}}}],
                "initContainerStatuses": [
                    {"name": "s", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                     "allocatedResources": {"cpu": "100m"}, "resources": {"requests": {"cpu": "100m"}}},
                    // A finished init container's status never counts, only its spec's step.
                    {"name": "i", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                     "resources": {"requests": {"cpu": "5"}}}]
            })
        };
        let mut p = pod_from(spec.clone());
        assert_eq!(amounts(&p), ("1".into(), "1100m".into(), "2097152".into()), "spec alone");
        p.status = Some(serde_json::from_value(status(json!([]))).unwrap());
        // a: max(1, 2) CPU and max(2Mi, 1Mi); s: 100m. The init step i (50m + 100m) stays below.
        assert_eq!(amounts(&p), ("1".into(), "2100m".into(), "2097152".into()), "resize under way");
        p.status = Some(
            serde_json::from_value(status(
                json!([{"type": "PodResizePending", "status": "True", "reason": "Infeasible"}]),
            ))
            .unwrap(),
        );
        // Infeasible: the spec no longer counts, only what is allocated and running.
        assert_eq!(amounts(&p), ("1".into(), "2100m".into(), "1048576".into()), "resize infeasible");
    }

    #[test]
    fn finished_and_long_deleted_pods_are_not_charged() {
        let mut p = pod_from(json!({"containers": [c("a", "1", "1Mi")]}));
        assert!(pod_is_charged(&p, 0));
        for (phase, charged) in
            [("Running", true), ("Pending", true), ("Succeeded", false), ("Failed", false)]
        {
            p.status = Some(serde_json::from_value(json!({"phase": phase})).unwrap());
            assert_eq!(pod_is_charged(&p, 0), charged, "{phase}");
        }
        p.status = None;
        p.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        p.metadata.deletion_grace_period_seconds = Some(30);
        let at = p.metadata.deletion_timestamp.as_ref().unwrap().0.as_second();
        assert!(pod_is_charged(&p, at + 30), "charged until the grace period ends");
        assert!(!pod_is_charged(&p, at + 31));
    }

    #[test]
    fn claims_count_the_larger_of_request_and_allocation() {
        let mut pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
        }))
        .unwrap();
        assert_eq!(persistent_volume_claim(&pvc)["requests.storage"], "10Gi".parse().unwrap());
        pvc.status =
            Some(serde_json::from_value(json!({"allocatedResources": {"storage": "20Gi"}})).unwrap());
        assert_eq!(persistent_volume_claim(&pvc)["requests.storage"], "20Gi".parse().unwrap());
    }

    #[test]
    fn only_load_balancer_services_count() {
        for (t, n) in [("LoadBalancer", 1), ("ClusterIP", 0), ("NodePort", 0)] {
            let s: Service =
                serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"type": t}})).unwrap();
            assert_eq!(service(&s)["services.loadbalancers"], Milli::units(n), "{t}");
        }
    }
}

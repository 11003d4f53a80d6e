//! In a cluster the apiserver reaches the webhook through a Service; only the leader serves it, so
//! the Service must reach the leader alone. The leader labels its own Pod
//! `commons.dev/webhook=serving` once its webhook port accepts connections, and takes the label
//! off any other Pod of its namespace (a former leader); the chart's webhook Service selects on it.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::apply::count_write;

/// The label the webhook Service selects the serving Pod by.
pub const LABEL: &str = "commons.dev/webhook";
/// Its value on the serving Pod.
pub const SERVING: &str = "serving";

/// The label patch that puts `value` (or, with `None`, no value) on a Pod.
pub fn label_patch(value: Option<&str>) -> serde_json::Value {
    serde_json::json!({"metadata": {"labels": {LABEL: value}}})
}

/// Makes Pod `pod` in `namespace` the one the webhook Service reaches.
pub async fn serve_here(client: &Client, namespace: &str, pod: &str) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for other in pods.list(&ListParams::default().labels(&format!("{LABEL}={SERVING}"))).await? {
        if other.name_any() != pod {
            pods.patch(&other.name_any(), &PatchParams::default(), &Patch::Merge(label_patch(None))).await?;
            count_write("Pod", "patch");
            tracing::info!(pod = other.name_any(), "the webhook Service no longer reaches a former leader");
        }
    }
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(label_patch(Some(SERVING)))).await?;
    count_write("Pod", "patch");
    tracing::info!(pod, "the webhook Service reaches this replica");
    Ok(())
}

/// Waits (up to a minute) until something accepts connections on `port` of this host.
pub async fn listening(port: u16) -> bool {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_is_set_and_taken_off_by_a_merge_patch() {
        assert_eq!(
            label_patch(Some(SERVING)),
            serde_json::json!({"metadata": {"labels": {"commons.dev/webhook": "serving"}}})
        );
        assert_eq!(
            label_patch(None),
            serde_json::json!({"metadata": {"labels": {"commons.dev/webhook": null}}})
        );
    }
}

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

/// Makes Pod `pod` in `namespace` the one the webhook Service reaches: the label comes off every
/// other Pod that has it, and goes on this one if it is not there yet (so it is cheap to repeat).
pub async fn serve_here(client: &Client, namespace: &str, pod: &str) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut here = false;
    for other in pods.list(&ListParams::default().labels(&format!("{LABEL}={SERVING}"))).await? {
        if other.name_any() == pod {
            here = true;
            continue;
        }
        pods.patch(&other.name_any(), &PatchParams::default(), &Patch::Merge(label_patch(None))).await?;
        count_write("Pod", "patch");
        tracing::info!(pod = other.name_any(), "the webhook Service no longer reaches a former leader");
    }
    if !here {
        pods.patch(pod, &PatchParams::default(), &Patch::Merge(label_patch(Some(SERVING)))).await?;
        count_write("Pod", "patch");
        tracing::info!(pod, "the webhook Service reaches this replica");
    }
    Ok(())
}

/// Takes the label off this replica's own Pod (at start, before it can be Ready: a container
/// restarted in a Pod that led keeps its labels, and must not be reached until it leads again).
pub async fn not_here(client: &Client, namespace: &str, pod: &str) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let labelled = pods.get_opt(pod).await?.is_some_and(|p| p.labels().get(LABEL).is_some());
    if labelled {
        pods.patch(pod, &PatchParams::default(), &Patch::Merge(label_patch(None))).await?;
        count_write("Pod", "patch");
        tracing::info!(pod, "took the webhook label off this replica's Pod until it leads");
    }
    Ok(())
}

/// This replica's Pod, when it runs in one behind the webhook Service: (namespace, name).
pub fn own_pod(endpoint: &super::registration::Endpoint) -> Option<(String, String)> {
    match endpoint {
        super::registration::Endpoint::Service { .. } => {
            Some((std::env::var("POD_NAMESPACE").ok()?, std::env::var("POD_NAME").ok()?))
        }
        super::registration::Endpoint::Url(_) => None,
    }
}

/// While this replica leads (until `stop`): once the webhook listens on `port`, keeps the webhook
/// Service reaching this Pod alone, looking again every 15 s, each call bounded, retried forever.
pub async fn keep_serving_here(
    client: Client,
    (namespace, pod): (String, String),
    port: u16,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let work = async {
        if !listening(port).await {
            tracing::error!(port, "the webhook does not listen; the webhook Service is not pointed here");
            return;
        }
        let mut wait = std::time::Duration::from_secs(1);
        loop {
            let call = tokio::time::timeout(CALL, serve_here(&client, &namespace, &pod)).await;
            wait = match call {
                Ok(Ok(())) => std::time::Duration::from_secs(15),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot point the webhook Service at this replica");
                    (wait * 2).min(std::time::Duration::from_secs(10))
                }
                Err(_) => {
                    tracing::warn!(
                        "pointing the webhook Service at this replica took over {}s",
                        CALL.as_secs()
                    );
                    (wait * 2).min(std::time::Duration::from_secs(10))
                }
            };
            tokio::time::sleep(wait).await;
        }
    };
    tokio::select! {
        () = work => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

/// How long one call about the label may take.
const CALL: std::time::Duration = std::time::Duration::from_secs(10);

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

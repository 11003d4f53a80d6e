//! Helpers for the end-to-end tests. They talk to the real local control plane that
//! `e2e/controlplane/up.sh` starts (its kubeconfig is in `KUBECONFIG`); nothing here is mocked.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client, Resource};

/// Why an end-to-end step failed.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// No usable kubeconfig.
    #[error("cannot reach the local control plane (run e2e/controlplane/up.sh and export KUBECONFIG): {0}")]
    NoCluster(#[source] kube::Error),
    /// A command could not run.
    #[error("cannot run {cmd}: {source}")]
    Spawn {
        /// The command.
        cmd: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command exited non-zero.
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        /// The command.
        cmd: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A condition was not reached in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// An API call failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// A client for the local control plane, from `KUBECONFIG`.
pub async fn client() -> Result<Client, E2eError> {
    let client = Client::try_default().await.map_err(E2eError::NoCluster)?;
    client.apiserver_version().await.map_err(E2eError::NoCluster)?;
    Ok(client)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// Runs kubectl (from PATH, as `e2e/controlplane/env.sh` sets it) and returns its stdout.
pub fn kubectl(args: &[&str]) -> Result<String, E2eError> {
    let cmd = format!("kubectl {}", args.join(" "));
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .map_err(|source| E2eError::Spawn { cmd: cmd.clone(), source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(E2eError::Command {
            cmd,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Polls `check` every 250 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, E2eError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(E2eError::Timeout(timeout, what.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Installs the committed CRDs (`crds/yaml/`) with kubectl, as a platform team would, and waits
/// until every one is Established.
pub async fn install_crds(client: &Client) -> Result<(), E2eError> {
    let dir = repo_root().join("crds/yaml");
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=commons-e2e",
        "-f",
        &dir.to_string_lossy(),
    ])?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in commons_crds::generate::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        let api = api.clone();
        wait_for(&format!("CRD {name} Established"), Duration::from_secs(60), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get_opt(&name).await.ok()??;
                let established =
                    crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
                established.then_some(())
            }
        })
        .await?;
    }
    Ok(())
}

/// A dynamic API for the kind `K`, in `namespace` when given.
pub fn dynamic_api<K: Resource<DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(&K::group(&()), &K::version(&()), &K::kind(&()));
    let ar = ApiResource::from_gvk_with_plural(&gvk, &K::plural(&()));
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Creates the object described by `manifest` (raw JSON, as a person would write it) and returns
/// the apiserver's answer: the stored object, or the rejection message.
pub async fn create_raw<K: Resource<DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
    manifest: serde_json::Value,
) -> Result<DynamicObject, String> {
    let obj: DynamicObject = serde_json::from_value(manifest).map_err(|e| format!("bad manifest: {e}"))?;
    dynamic_api::<K>(client, namespace).create(&PostParams::default(), &obj).await.map_err(|e| match e {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    })
}

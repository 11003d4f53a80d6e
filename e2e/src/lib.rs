//! Helpers for the end-to-end tests. They talk to the real local control plane that
//! `e2e/controlplane/up.sh` starts (its kubeconfig is in `KUBECONFIG`); nothing here is mocked.

pub mod api;
pub mod churn;
pub mod floor;
pub mod focus;
pub mod ledgers;
pub mod measure;

pub use measure::{
    Memory, apiserver_requests, cpu_seconds, cpu_used, operator_connections, operator_memory_mib,
    operator_metric, operator_samples, requests_between,
};

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, PostParams};
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
    /// A test object did not deserialize into its type.
    #[error("test object: {0}")]
    Object(#[from] serde_json::Error),
}

/// A client for the local control plane, from `KUBECONFIG`.
pub async fn client() -> Result<Client, E2eError> {
    let client = Client::try_default().await.map_err(E2eError::NoCluster)?;
    client.apiserver_version().await.map_err(E2eError::NoCluster)?;
    Ok(client)
}

/// A client for the local control plane that acts as `user` in `groups` (impersonation, as
/// `kubectl --as --as-group`): what a tenancy owner may do, tried for real.
pub async fn client_as(user: &str, groups: &[&str]) -> Result<Client, E2eError> {
    let mut config =
        kube::Config::infer().await.map_err(|e| E2eError::NoCluster(kube::Error::InferConfig(e)))?;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
    Client::try_from(config).map_err(E2eError::NoCluster)
}

/// A Tenancy manifest for tests: owned by the group `<name>-admins`, with `namespaces`, not
/// protected from deletion (tests delete what they make), and `extra` merged into its spec.
pub fn tenancy_manifest(name: &str, namespaces: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "organisation": {
            "id": format!("{name}-org"),
            "displayName": format!("{name} organisation"),
            "sector": "local-government",
            "costCentre": "E2E-01",
            "contactEmail": "e2e@example.gov.uk"
        },
        "owners": [{"kind": "Group", "name": format!("{name}-admins")}],
        "deletionProtection": false,
        "namespaces": namespaces.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>()
    });
    if let (serde_json::Value::Object(s), serde_json::Value::Object(e)) = (&mut spec, extra) {
        s.extend(e);
    }
    serde_json::json!({"apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": name}, "spec": spec})
}

/// Deletes Tenancy `name` if it exists (lifting its deletion protection first: tests delete what
/// they make) and waits until it is gone with everything it owned.
pub async fn delete_tenancy(client: &Client, name: &str) -> Result<(), E2eError> {
    let api: Api<commons_crds::Tenancy> = Api::all(client.clone());
    if api.get_opt(name).await?.is_none() {
        return Ok(());
    }
    let lift = serde_json::json!({"spec": {"deletionProtection": false}});
    api.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&lift)).await?;
    let _ = api.delete(name, &kube::api::DeleteParams::foreground()).await;
    wait_for(&format!("Tenancy {name} gone"), Duration::from_secs(120), || {
        let api = api.clone();
        async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
    })
    .await
}

/// The repository root: cargo's `CARGO_MANIFEST_DIR` as the test or binary runs (the build may
/// come from a cache shared by clones at other paths, so the path it was compiled at is only the
/// fallback).
pub fn repo_root() -> PathBuf {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(manifest).parent().map(PathBuf::from).unwrap_or_default()
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

/// Runs helm (on PATH from e2e/controlplane/env.sh) with `args`: what it printed, or as the error
/// everything it printed.
pub fn helm(args: &[&str]) -> Result<String, String> {
    let out =
        Command::new("helm").args(args).output().map_err(|e| format!("helm {}: {e}", args.join(" ")))?;
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(printed) }
}

/// Lets the Helm release `release` in `namespace` adopt the ClusterRole `commons:tenant-admin`
/// the scripts' `commons` made before any chart (docs/operations.md, "commons:tenant-admin"):
/// without this `helm install` refuses to take over an object it did not make.
pub fn adopt_tenant_admin_role(release: &str, namespace: &str) -> Result<(), E2eError> {
    let role = "commons:tenant-admin";
    kubectl(&["label", "clusterrole", role, "app.kubernetes.io/managed-by=Helm", "--overwrite"])?;
    kubectl(&[
        "annotate",
        "clusterrole",
        role,
        &format!("meta.helm.sh/release-name={release}"),
        &format!("meta.helm.sh/release-namespace={namespace}"),
        "--overwrite",
    ])?;
    Ok(())
}

/// The pods of `namespace` not being deleted.
pub async fn live_pods(client: &Client, namespace: &str) -> Result<usize, kube::Error> {
    Ok(Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count())
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

/// Waits until `namespace` has its `default` ServiceAccount: the apiserver refuses a pod without
/// it before any admission webhook is asked, and the controller manager makes it a moment after the
/// namespace.
pub async fn wait_for_default_service_account(client: &Client, namespace: &str) -> Result<(), E2eError> {
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client.clone(), namespace);
    wait_for(&format!("the default ServiceAccount of {namespace}"), Duration::from_secs(60), || {
        let accounts = accounts.clone();
        async move { accounts.get_opt("default").await.ok()?.map(|_| ()) }
    })
    .await
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

/// Server-side applies a raw manifest (as `kubectl apply --server-side` would) under the field
/// manager `commons-e2e`.
pub async fn apply_raw<K: Resource<DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
    manifest: serde_json::Value,
) -> Result<DynamicObject, E2eError> {
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let api = dynamic_api::<K>(client, namespace);
    let params = kube::api::PatchParams::apply("commons-e2e").force();
    Ok(api.patch(&name, &params, &kube::api::Patch::Apply(&manifest)).await?)
}

/// Waits until Tenancy `name` has condition `type_` with `status` (and `reason`, when given).
pub async fn wait_for_condition(
    client: &Client,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> Result<commons_crds::Tenancy, E2eError> {
    let api: Api<commons_crds::Tenancy> = Api::all(client.clone());
    wait_for(&format!("Tenancy {name} {type_}={status} {reason:?}"), timeout, || {
        let api = api.clone();
        async move {
            let t = api.get_opt(name).await.ok()??;
            let c = t.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?.clone();
            let fresh = t.status.as_ref()?.observed_generation == t.metadata.generation;
            (fresh && c.status == status && reason.is_none_or(|r| c.reason == r)).then_some(t)
        }
    })
    .await
}

/// `kubectl auth can-i VERB RESOURCE -n NS --as USER --as-group GROUP`: whether it is allowed.
pub fn can_i(
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
    user: &str,
    group: &str,
) -> Result<bool, E2eError> {
    let mut args = vec!["auth", "can-i", verb, resource, "--as", user, "--as-group", group];
    if let Some(ns) = namespace {
        args.extend(["-n", ns]);
    }
    let out = Command::new("kubectl")
        .args(&args)
        .output()
        .map_err(|source| E2eError::Spawn { cmd: format!("kubectl {}", args.join(" ")), source })?;
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match answer.as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(E2eError::Command {
            cmd: format!("kubectl {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

/// The reasons of the Events recorded about Tenancy `name`.
pub async fn tenancy_event_reasons(client: &Client, name: &str) -> Result<Vec<String>, E2eError> {
    event_reasons(client, "Tenancy", name).await
}

/// The reasons of the Events recorded about the cluster-scoped object `kind`/`name`.
pub async fn event_reasons(client: &Client, kind: &str, name: &str) -> Result<Vec<String>, E2eError> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::all(client.clone());
    let fields = format!("involvedObject.kind={kind},involvedObject.name={name}");
    let list = api.list(&kube::api::ListParams::default().fields(&fields)).await?;
    Ok(list.items.into_iter().filter_map(|e| e.reason).collect())
}

/// The notes of the Events with `reason` recorded about the object with `uid` (not about an
/// earlier object of the same name: Events outlive their object by an hour).
pub async fn event_notes(client: &Client, uid: &str, reason: &str) -> Result<Vec<String>, E2eError> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::all(client.clone());
    let fields = format!("involvedObject.uid={uid},reason={reason}");
    let list = api.list(&kube::api::ListParams::default().fields(&fields)).await?;
    Ok(list.items.into_iter().filter_map(|e| e.message).collect())
}

/// A pod that Pod Security Admission's restricted profile admits, with no resource requests (the
/// tenancy's LimitRange fills them in).
pub fn restricted_pod(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "e2e"}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app",
                "image": "registry.example/app:1.0",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

/// Runs the `commons` binary under test (the one the local control plane's operator process runs,
/// found through /proc) with `args`, and returns what it printed.
pub fn commons(args: &[&str]) -> Result<String, E2eError> {
    let binary = commons_binary()?;
    let out = Command::new(&binary)
        .args(args)
        .output()
        .map_err(|source| E2eError::Spawn { cmd: format!("commons {}", args.join(" ")), source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(E2eError::Command {
            cmd: format!("commons {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Commons' own `managedFields` entries of an object itself (not of a subresource such as its
/// status), as their `operation`s, sorted: `["Update"]` for a child Commons created and has not
/// changed since, `["Apply"]` once it has.
pub fn commons_operations(meta: &kube::api::ObjectMeta) -> Vec<String> {
    let mut ops: Vec<String> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(commons_crds::labels::MANAGER))
        .filter(|m| m.subresource.as_deref().unwrap_or_default().is_empty())
        .filter_map(|m| m.operation.clone())
        .collect();
    ops.sort();
    ops
}

/// The `commons` binary the operator under test runs from.
pub fn commons_binary() -> Result<PathBuf, E2eError> {
    let path = measure::cluster_dir().join("pids/commons.pid");
    let pid = std::fs::read_to_string(&path)
        .map_err(|source| E2eError::Spawn { cmd: format!("read {}", path.display()), source })?;
    let exe = PathBuf::from(format!("/proc/{}/exe", pid.trim()));
    let target = std::fs::read_link(&exe)
        .map_err(|source| E2eError::Spawn { cmd: format!("read {}", exe.display()), source })?;
    // A build since it started replaced the file (with the same content, or the scripts would
    // have restarted it): the running binary is still reachable through /proc.
    Ok(if target.exists() { target } else { exe })
}

/// Runs `e2e/operator.sh ACTION` (start, stop or restart the operator under test, ...; words after
/// the first are its arguments) and returns what it printed.
pub fn operator(action: &str) -> Result<String, E2eError> {
    let script = repo_root().join("e2e/operator.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(action.split_whitespace())
        .output()
        .map_err(|source| E2eError::Spawn { cmd: format!("e2e/operator.sh {action}"), source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(E2eError::Command {
            cmd: format!("e2e/operator.sh {action}"),
            status: out.status.to_string(),
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// A Tenancy for the benchmarks: body number `i`, one owner group, the given namespaces and quota.
pub fn bench_tenancy(
    name: &str,
    i: usize,
    namespaces: &[&str],
    quota: serde_json::Value,
) -> serde_json::Value {
    let namespaces: Vec<serde_json::Value> =
        namespaces.iter().map(|n| serde_json::json!({"name": n})).collect();
    serde_json::json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "Tenancy", "metadata": {"name": name},
        "spec": {
            "organisation": {"id": format!("benchmark-body-{i}"), "displayName": format!("Benchmark body {i}"), "sector": "local-government",
                             "costCentre": "BENCH", "contactEmail": "bench@example.gov.uk"},
            "owners": [{"kind": "Group", "name": format!("{name}-admins")}],
            "deletionProtection": false,
            "namespaces": namespaces,
            "quota": quota
        }
    })
}

/// Waits until `count` Tenancies named `prefix...` are Ready for their latest generation.
///
/// It follows one watch of the Tenancies rather than listing them again and again: a benchmark
/// that lists 1,000 Tenancies four times a second loads the apiserver it is measuring.
pub async fn wait_all_ready(
    client: &Client,
    prefix: &str,
    count: usize,
    timeout: Duration,
) -> Result<(), E2eError> {
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    use kube::runtime::watcher::{self, Event};
    let api: Api<commons_crds::Tenancy> = Api::all(client.clone());
    let ready = |t: &commons_crds::Tenancy| {
        t.status.as_ref().is_some_and(|s| {
            s.observed_generation == t.metadata.generation
                && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    let what = format!("{count} tenancies {prefix}* Ready");
    let follow = async {
        let mut seen = std::collections::BTreeSet::new();
        let mut events = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
        while let Some(event) = events.next().await {
            let (t, deleted) = match event {
                Ok(Event::Apply(t) | Event::InitApply(t)) => (t, false),
                Ok(Event::Delete(t)) => (t, true),
                // A fresh list (at the start, or after the watch broke) tells everything again.
                Ok(Event::Init) => {
                    seen.clear();
                    continue;
                }
                Ok(Event::InitDone) | Err(_) => continue,
            };
            let Some(name) = t.metadata.name.clone().filter(|n| n.starts_with(prefix)) else { continue };
            if ready(&t) && !deleted {
                seen.insert(name);
            } else {
                seen.remove(&name);
            }
            if seen.len() == count {
                return Ok(());
            }
        }
        Err(E2eError::Timeout(timeout, what.clone()))
    };
    tokio::time::timeout(timeout, follow).await.map_err(|_| E2eError::Timeout(timeout, what.clone()))?
}

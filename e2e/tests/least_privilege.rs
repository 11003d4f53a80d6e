//! The chart's RBAC is enough, and every rule counts: `commons run` on the local control plane,
//! authenticated as the chart's ServiceAccount (a token from the TokenRequest API) instead of the
//! admin, makes a tenancy Ready, enforces its quota with the webhook, joins it to a segment and
//! meters its pod; with one rule taken out of the chart's ClusterRole (quotas and LimitRanges), a
//! new tenancy is not made Ready and the tenancy controller's reconciles fail as forbidden.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::process::Command;
use std::time::Duration;

use commons_crds::Tenancy;
use commons_crds::network_segment::NetworkSegment;
use commons_e2e::ledgers::intervals_of;
use commons_e2e::{
    apply_raw, client, delete_tenancy, helm, install_crds, kubectl, operator, repo_root, restricted_pod,
    tenancy_manifest, wait_for, wait_for_condition, wait_for_default_service_account,
};
use k8s_openapi::api::core::v1::{LimitRange, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::api::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const RELEASE: &str = "e2e-lp";
const NS: &str = "e2e-lp";
const SERVICE_ACCOUNT: &str = "e2e-lp-commons";

/// A kubeconfig for the local apiserver whose user is the ServiceAccount, by a token the
/// TokenRequest API issued.
fn service_account_kubeconfig() -> std::path::PathBuf {
    let token = kubectl(&["-n", NS, "create", "token", SERVICE_ACCOUNT, "--duration", "2h"]).unwrap();
    let server =
        kubectl(&["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"]).unwrap();
    let ca = kubectl(&[
        "config",
        "view",
        "--minify",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority-data}",
    ])
    .unwrap();
    let ca = if ca.is_empty() {
        let file = kubectl(&[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority}",
        ])
        .unwrap();
        format!("certificate-authority: {file}")
    } else {
        format!("certificate-authority-data: {ca}")
    };
    let path = commons_e2e::measure::cluster_dir().join("e2e-lp.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    {ca}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context:\n    cluster: local\n    user: sa\ncurrent-context: sa\n",
            token.trim()
        ),
    )
    .unwrap();
    path
}

/// Runs e2e/operator.sh `action` with the operator's kubeconfig and Lease namespace replaced.
fn operator_as(kubeconfig: &std::path::Path, action: &str) {
    let out = Command::new("bash")
        .arg(repo_root().join("e2e/operator.sh"))
        .arg(action)
        .env("COMMONS_OPERATOR_KUBECONFIG", kubeconfig)
        .env("COMMONS_LEADER_NAMESPACE", NS)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Puts the scripts' operator (the admin's kubeconfig, its own Lease namespace) back, and removes
/// the release, however the test ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = operator("start");
        let _ = helm(&["uninstall", RELEASE, "-n", NS, "--wait"]);
    }
}

async fn segment_ready(client: &Client, name: &str) {
    let api: Api<NetworkSegment> = Api::all(client.clone());
    wait_for(&format!("segment {name} Ready"), Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            let s = api.get(name).await.ok()?;
            let st = s.status?;
            st.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
        }
    })
    .await
    .unwrap();
}

async fn metered(uid: &str) -> bool {
    !intervals_of(uid).await.unwrap().is_empty()
}

#[tokio::test]
async fn commons_runs_as_the_charts_service_account_and_every_rule_is_needed() {
    let client = client().await.unwrap();
    install_crds(&client).await.unwrap();
    for t in ["e2e-lp-one", "e2e-lp-two"] {
        delete_tenancy(&client, t).await.unwrap();
    }
    let _ = helm(&["uninstall", RELEASE, "-n", NS, "--wait"]);
    let _ = kubectl(&["create", "namespace", NS]);
    let ca = std::fs::read_to_string(commons_e2e::measure::cluster_dir().join("pki/webhook-client-ca.crt"))
        .unwrap();
    let ca_file = std::env::temp_dir().join(format!("e2e-lp-ca-{}.crt", std::process::id()));
    std::fs::write(&ca_file, ca).unwrap();
    // The scripts' `commons` keeps `commons:tenant-admin` already: the release adopts it.
    commons_e2e::adopt_tenant_admin_role(RELEASE, NS).unwrap();
    // The RBAC of the chart as installed, with the scripts' requests namespace (it exists).
    let _ = kubectl(&[
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "e2e-ledger",
        "--from-literal=url=postgres://unused@ledger.example/x",
    ]);
    helm(&[
        "install",
        RELEASE,
        &repo_root().join("charts/commons").display().to_string(),
        "-n",
        NS,
        "--set",
        "ledger.mode=postgres",
        "--set",
        "ledger.postgres.existingSecret=e2e-ledger",
        "--set",
        "api.requestsNamespace=commons-requests",
        "--set",
        "api.createRequestsNamespace=false",
        "--set-file",
        &format!("webhook.clientCA={}", ca_file.display()),
    ])
    .unwrap();
    let restore = Restore;
    let kubeconfig = service_account_kubeconfig();
    // The token is the ServiceAccount's, and it is no admin.
    let who = Command::new("kubectl")
        .args([
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&who.stdout), format!("system:serviceaccount:{NS}:{SERVICE_ACCOUNT}"));
    // It holds the tenant-admin rules (to bind owners to that role) and nothing that lets it
    // grant more: no bind, no escalate, no impersonation.
    let can = |args: &[&str]| {
        let out = Command::new("kubectl")
            .args(["--kubeconfig", &kubeconfig.display().to_string(), "auth", "can-i"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    for refused in [
        &["bind", "clusterroles"][..],
        &["escalate", "clusterroles"],
        &["bind", "clusterroles/commons:tenant-admin"],
        &["escalate", "clusterroles/commons:tenant-admin"],
        &["impersonate", "users"],
        &["update", "clusterroles"],
        &["delete", "clusterrolebindings"],
        &["get", "nodes"],
    ] {
        assert_eq!(can(refused), "no", "the ServiceAccount can {refused:?}");
    }
    assert_eq!(can(&["create", "pods/exec", "-n", "default"]), "yes", "it holds the tenant-admin rules");
    // It reads one child before handing a create's fields to its applied fields.
    for kind in ["resourcequotas", "limitranges", "rolebindings", "clusterroles", "clusterrolebindings"] {
        assert_eq!(can(&["get", kind, "-A"]), "yes", "the ServiceAccount cannot get {kind}");
    }
    operator_as(&kubeconfig, "start");

    // Tenancy, webhook, segment, metering.
    apply_raw::<NetworkSegment>(&client, None, json!({
        "apiVersion": "commons.dev/v1alpha1", "kind": "NetworkSegment", "metadata": {"name": "e2e-lp-zone"},
        "spec": {"description": "least privilege", "admission": {"sectors": ["local-government"]}}
    }))
    .await
    .unwrap();
    apply_raw::<Tenancy>(
        &client,
        None,
        tenancy_manifest(
            "e2e-lp-one",
            &["app"],
            json!({"quota": {"pods": 1}, "networkSegments": ["e2e-lp-zone"]}),
        ),
    )
    .await
    .unwrap();
    wait_for_condition(&client, "e2e-lp-one", "Ready", "True", None, Duration::from_secs(60)).await.unwrap();
    segment_ready(&client, "e2e-lp-zone").await;
    wait_for_default_service_account(&client, "e2e-lp-one-app").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "e2e-lp-one-app");
    let first: Pod = pods
        .create(&PostParams::default(), &serde_json::from_value(restricted_pod("first")).unwrap())
        .await
        .unwrap();
    let refused = pods
        .create(&PostParams::default(), &serde_json::from_value(restricted_pod("second")).unwrap())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("quota.commons.dev"), "refused by Commons' webhook: {refused}");
    let uid = first.uid().unwrap();
    wait_for("the pod metered", Duration::from_secs(60), || async { metered(&uid).await.then_some(()) })
        .await
        .unwrap();

    // A change to the spec: its first reconcile writes every child out, each first handed from
    // its create to Commons' applied fields, which reads it (`get`) and patches it.
    let mut changed = tenancy_manifest(
        "e2e-lp-one",
        &["app"],
        json!({"quota": {"pods": 1}, "networkSegments": ["e2e-lp-zone"]}),
    );
    changed["spec"]["owners"].as_array_mut().unwrap().push(json!({"kind": "Group", "name": "e2e-lp-more"}));
    apply_raw::<Tenancy>(&client, None, changed).await.unwrap();
    let applied = |meta: &ObjectMeta| commons_e2e::commons_operations(meta) == ["Apply"];
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "e2e-lp-one-app");
    let limits: Api<LimitRange> = Api::namespaced(client.clone(), "e2e-lp-one-app");
    let readers: Api<ClusterRoleBinding> = Api::all(client.clone());
    wait_for("every child applied after the change", Duration::from_secs(60), || async {
        let rb = bindings.get("commons-owners").await.ok()?;
        let lr = limits.get("commons-defaults").await.ok()?;
        let crb = readers.get("commons:tenancy:e2e-lp-one").await.ok()?;
        let bound = rb.subjects.iter().flatten().any(|s| s.name == "e2e-lp-more");
        (bound && applied(&rb.metadata) && applied(&lr.metadata) && applied(&crb.metadata)).then_some(())
    })
    .await
    .unwrap();

    // One rule taken out (quotas and LimitRanges): a new tenancy cannot be made Ready, and says so.
    let role = format!("{RELEASE}-commons");
    let rules = kubectl(&["get", "clusterrole", &role, "-o", "json"]).unwrap();
    let mut rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let kept: Vec<serde_json::Value> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        // Commons' own rule (it writes them), not the tenant-admin rule that reads them.
        .filter(|r| {
            !(r["resources"].as_array().is_some_and(|rs| rs.iter().any(|x| x == "limitranges"))
                && r["verbs"].as_array().is_some_and(|vs| vs.iter().any(|v| v == "create")))
        })
        .cloned()
        .collect();
    assert!(kept.len() < rules["rules"].as_array().unwrap().len(), "the rule is in the chart's role");
    rules["rules"] = serde_json::Value::Array(kept);
    let patch = serde_json::json!({"rules": rules["rules"]}).to_string();
    kubectl(&["patch", "clusterrole", &role, "--type=merge", "-p", &patch]).unwrap();
    let errors = || {
        commons_e2e::operator_samples("commons_reconcile_errors_total")
            .unwrap_or_default()
            .iter()
            .filter(|(labels, _)| {
                labels.contains("controller=\"tenancy\"") && labels.contains("reason=\"kube_api\"")
            })
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    let before = errors();
    apply_raw::<Tenancy>(&client, None, tenancy_manifest("e2e-lp-two", &["app"], json!({}))).await.unwrap();
    let message =
        wait_for("the tenancy controller failing on e2e-lp-two", Duration::from_secs(60), || async {
            (errors() > before)
                .then(|| format!("{} tenancy reconciles failed with kube_api", errors() - before))
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let tenancies: Api<Tenancy> = Api::all(client.clone());
    let ready = tenancies
        .get("e2e-lp-two")
        .await
        .unwrap()
        .status
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"));
    assert!(ready.as_ref().is_none_or(|c| c.status != "True"), "Ready without the rule: {ready:?}");
    println!("with the rule taken out: {message}");

    drop(restore);
    for t in ["e2e-lp-one", "e2e-lp-two"] {
        delete_tenancy(&client, t).await.unwrap();
    }
    Api::<NetworkSegment>::all(client.clone()).delete("e2e-lp-zone", &DeleteParams::default()).await.unwrap();
    let _ = kubectl(&["delete", "namespace", NS, "--wait=false"]);
}

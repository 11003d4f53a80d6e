//! The Helm chart `charts/commons` on the real local control plane: `helm lint`; `helm template`
//! applied with `kubectl apply --dry-run=server` (and its cert-manager mode and ServiceMonitor,
//! against those add-ons' own CRDs); a wrong value refused at install, naming it;
//! `helm install`, `helm upgrade` to a changed value and `helm uninstall`, with what exists after
//! each; an uninstall leaves the CRDs, the requests namespace and the tenancies' namespaces; the
//! release adopts `commons:tenant-admin` and neither it nor Commons rewrites the other's part.
//! (The local nodes are kwok's: the chart's pods are scheduled and reported running, their image
//! never pulled. The scripts' own `commons` keeps running the cluster meanwhile.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use commons_e2e::{helm, kubectl, repo_root, wait_for};

const RELEASE: &str = "e2e-chart";
const NS: &str = "e2e-chart";
const REQUESTS_NS: &str = "e2e-chart-requests";
const TENANT_ADMIN: &str = "commons:tenant-admin";
/// A CA in PEM for `webhook.clientCA` (the local apiserver's webhook client CA).
fn client_ca() -> String {
    let path = commons_e2e::measure::cluster_dir().join("pki/webhook-client-ca.crt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn chart() -> String {
    repo_root().join("charts/commons").display().to_string()
}

/// The values every step uses: a PostgreSQL ledger (two replicas), the local client CA, the
/// release's own requests namespace.
fn values(file: &std::path::Path) -> Vec<String> {
    let ca = client_ca();
    let yaml = format!(
        "replicas: 2\nledger:\n  mode: postgres\n  postgres:\n    existingSecret: e2e-ledger\napi:\n  requestsNamespace: {REQUESTS_NS}\nwebhook:\n  clientCA: |\n{}\n",
        ca.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    );
    std::fs::write(file, yaml).unwrap();
    vec!["-f".into(), file.display().to_string()]
}

/// The environment of the Deployment's container, as JSON.
fn deployment_env(name: &str) -> String {
    kubectl(&["-n", NS, "get", "deployment", name, "-o", "jsonpath={.spec.template.spec.containers[0].env}"])
        .unwrap()
}

/// `kubectl apply --dry-run=server` of `manifests`: whether the apiserver took every object, and
/// what kubectl printed (its errors after its output).
fn dry_run(manifests: &str) -> (bool, String) {
    let mut apply = Command::new("kubectl")
        .args([
            "apply",
            "--dry-run=server",
            "--server-side",
            "--force-conflicts",
            "--field-manager=e2e-chart",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    apply.stdin.take().unwrap().write_all(manifests.as_bytes()).unwrap();
    let out = apply.wait_with_output().unwrap();
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn exists(args: &[&str]) -> bool {
    kubectl(args).is_ok()
}

/// The ClusterRole every owner is bound to, as stored.
fn tenant_admin_role() -> serde_json::Value {
    serde_json::from_str(&kubectl(&["get", "clusterrole", TENANT_ADMIN, "-o", "json"]).unwrap()).unwrap()
}

/// Repairs of kept objects the scripts' `commons` has made so far.
fn repairs() -> f64 {
    commons_e2e::operator_metric("commons_kept_object_repairs_total").unwrap()
}

/// The role is the release's (Helm's labels and release annotations), its rules are still the
/// ones Commons keeps, and neither the chart nor Commons rewrites what the other set: over five
/// seconds the stored role does not change and Commons repairs nothing.
async fn the_role_is_the_releases_and_left_in_peace(rules: &serde_json::Value, when: &str) {
    let role = tenant_admin_role();
    let meta = &role["metadata"];
    assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "Helm", "{when}: {meta}");
    assert_eq!(meta["annotations"]["meta.helm.sh/release-name"], RELEASE, "{when}: {meta}");
    assert_eq!(meta["annotations"]["helm.sh/resource-policy"], "keep", "{when}: {meta}");
    assert_eq!(&role["rules"], rules, "{when}: the rules changed");
    let (version, repaired) = (meta["resourceVersion"].clone(), repairs());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(tenant_admin_role()["metadata"]["resourceVersion"], version, "{when}: rewritten");
    assert!((repairs() - repaired).abs() < f64::EPSILON, "{when}: Commons repaired something");
}

#[tokio::test]
async fn the_chart_lints_validates_installs_upgrades_and_uninstalls_keeping_the_data() {
    let file = std::env::temp_dir().join(format!("e2e-chart-values-{}.yaml", std::process::id()));
    let values = values(&file);
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).chain(values.iter().cloned()).collect()
    };
    let run = |args: Vec<String>| helm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // A release left by an interrupted run goes first.
    let _ = helm(&["uninstall", RELEASE, "-n", NS, "--wait"]);

    // Lint, and the schema's refusals name the value.
    let lint = run(with(&["lint", &chart(), "--strict"])).unwrap();
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
    for (set, named) in [
        ("replicas=two", "/replicas"),
        ("ledger.mode=mysql", "/ledger/mode"),
        ("webhook.port=80", "/webhook/port"),
        ("policy.clusterNetworks[0]=everything", "/policy/clusterNetworks/0"),
        ("surprise=1", "surprise"),
    ] {
        let err = run(with(&["template", RELEASE, &chart(), "--set", set])).unwrap_err();
        assert!(err.contains(named), "--set {set}: {err}");
    }
    let err = helm(&["template", RELEASE, &chart(), "--set", "replicas=2"]).unwrap_err();
    assert!(err.contains("replicas > 1 needs ledger.mode=postgres"), "{err}");
    let err = helm(&["template", RELEASE, &chart()]).unwrap_err();
    assert!(err.contains("webhook.clientCA is required"), "{err}");

    // Rendered and checked by the real apiserver (server-side dry run), into namespaces that exist.
    let _ = kubectl(&["create", "namespace", NS]);
    let _ = kubectl(&["create", "namespace", REQUESTS_NS]);
    let rendered = run(with(&[
        "template",
        RELEASE,
        &chart(),
        "-n",
        NS,
        "--include-crds",
        "--set",
        "api.createRequestsNamespace=false",
    ]))
    .unwrap();
    assert!(!rendered.contains("\"*\""), "no wildcard in any rule");
    let (applied, printed) = dry_run(&rendered);
    assert!(applied, "{printed}");
    for kind in [
        "deployment.apps",
        "clusterrole.rbac.authorization.k8s.io",
        "service/",
        "secret/",
        "networkpolicy",
        "poddisruptionbudget",
    ] {
        assert!(printed.contains(kind), "{kind} not applied: {printed}");
    }
    assert!(printed.contains(&format!("clusterrole.rbac.authorization.k8s.io/{TENANT_ADMIN}")), "{printed}");
    // The chart rendered into the release's namespace with `sets` (`--set` each).
    let chart_dir = chart();
    let render = |sets: &[&str]| {
        let mut args =
            vec!["template", RELEASE, &chart_dir, "-n", NS, "--set", "api.createRequestsNamespace=false"];
        for set in sets {
            args.extend(["--set", set]);
        }
        run(with(&args)).unwrap()
    };
    // The cert-manager mode, checked by the apiserver against cert-manager's own CRDs (installed
    // by test.sh from its Go module): its Issuers and Certificates instead of the chart's Secret,
    // and the Certificate writes the Secret the Deployment mounts.
    let rendered = render(&["webhook.certificate.certManager=true"]);
    let (applied, printed) = dry_run(&rendered);
    assert!(applied, "{printed}");
    let name = format!("{RELEASE}-commons");
    for object in [
        format!("issuer.cert-manager.io/{name}-selfsigned"),
        format!("issuer.cert-manager.io/{name}-webhook-ca"),
        format!("certificate.cert-manager.io/{name}-webhook-ca"),
        format!("certificate.cert-manager.io/{name}-webhook"),
    ] {
        assert!(printed.contains(&object), "{object} not applied: {printed}");
    }
    assert!(
        !printed.contains(&format!("secret/{name}-webhook-certificate")),
        "the chart's own Secret too: {printed}"
    );
    assert!(rendered.contains(&format!("secretName: {name}-webhook-certificate")), "{rendered}");
    // And those schemas are enforced: a key algorithm cert-manager does not know is refused.
    let (applied, printed) = dry_run(&rendered.replace("algorithm: ECDSA", "algorithm: DSA"));
    assert!(!applied && printed.contains("privateKey.algorithm"), "{printed}");

    // The ServiceMonitor, against the Prometheus Operator's CRD, with the interval asked for; an
    // interval Prometheus cannot read is refused.
    let rendered = render(&["serviceMonitor.enabled=true", "serviceMonitor.interval=45s"]);
    let (applied, printed) = dry_run(&rendered);
    assert!(applied, "{printed}");
    assert!(printed.contains(&format!("servicemonitor.monitoring.coreos.com/{name} ")), "{printed}");
    assert!(rendered.contains("      interval: 45s"), "{rendered}");
    let (applied, printed) = dry_run(&rendered.replace("interval: 45s", "interval: often"));
    assert!(!applied && printed.contains("interval"), "{printed}");
    kubectl(&["delete", "namespace", REQUESTS_NS, "--wait=true"]).unwrap();

    // Install: two replicas on a PostgreSQL ledger (its Secret made first).
    let _ = kubectl(&[
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "e2e-ledger",
        "--from-literal=url=postgres://commons@ledger.example/commons",
    ]);
    // The scripts' `commons` made and keeps `commons:tenant-admin` already, as on any cluster
    // where Commons ran before its chart: the release adopts it (docs/operations.md), and from
    // then on the chart owns its labels while both it and Commons hold the same rules.
    let rules = tenant_admin_role()["rules"].clone();
    assert!(rules.as_array().is_some_and(|r| !r.is_empty()), "{rules}");
    commons_e2e::adopt_tenant_admin_role(RELEASE, NS).unwrap();
    run(with(&["install", RELEASE, &chart(), "-n", NS, "--wait", "--timeout", "120s"])).unwrap();
    the_role_is_the_releases_and_left_in_peace(&rules, "after install").await;
    let replicas =
        kubectl(&["-n", NS, "get", "deployment", &name, "-o", "jsonpath={.status.readyReplicas}"]).unwrap();
    assert_eq!(replicas, "2");
    for what in [
        vec!["get", "clusterrole", &name],
        vec!["get", "clusterrolebinding", &name],
        vec!["-n", NS, "get", "role", &name],
        vec!["-n", REQUESTS_NS, "get", "role", &name],
        vec!["-n", NS, "get", "serviceaccount", &name],
        vec!["-n", NS, "get", "service", &name],
        vec!["-n", NS, "get", "service", &format!("{name}-webhook")],
        vec!["-n", NS, "get", "secret", &format!("{name}-webhook-certificate")],
        vec!["-n", NS, "get", "poddisruptionbudget", &name],
        vec!["-n", NS, "get", "networkpolicy", &name],
    ] {
        assert!(exists(&what), "after install: kubectl {}", what.join(" "));
    }
    // The webhook Service reaches only a pod labelled as serving: none of these (their image never runs).
    let selector =
        kubectl(&["-n", NS, "get", "service", &format!("{name}-webhook"), "-o", "jsonpath={.spec.selector}"])
            .unwrap();
    assert!(selector.contains("\"commons.dev/webhook\":\"serving\""), "{selector}");
    let env = deployment_env(&name);
    assert!(env.contains("\"name\":\"COMMONS_RESYNC_SECONDS\",\"value\":\"300\""), "{env}");
    assert!(env.contains("COMMONS_LEADER_ELECT"), "{env}");
    assert!(env.contains("\"name\":\"COMMONS_API_READ_TIMEOUT_SECONDS\",\"value\":\"75\""), "{env}");

    // Upgrade to a changed value: the Deployment rolls to it.
    run(with(&[
        "upgrade",
        RELEASE,
        &chart(),
        "-n",
        NS,
        "--set",
        "resyncSeconds=120",
        "--set",
        "replicas=3",
        "--wait",
        "--timeout",
        "120s",
    ]))
    .unwrap();
    let env = deployment_env(&name);
    assert!(env.contains("\"name\":\"COMMONS_RESYNC_SECONDS\",\"value\":\"120\""), "{env}");
    wait_for("three ready replicas after the upgrade", Duration::from_secs(60), || async {
        (kubectl(&["-n", NS, "get", "deployment", &name, "-o", "jsonpath={.status.readyReplicas}"]).ok()?
            == "3")
            .then_some(())
    })
    .await
    .unwrap();
    the_role_is_the_releases_and_left_in_peace(&rules, "after the upgrade").await;
    let history = helm(&["history", RELEASE, "-n", NS]).unwrap();
    assert_eq!(history.lines().count(), 3, "two revisions: {history}");

    // Uninstall: what the release made goes; the CRDs, the requests namespace (its requests and
    // decisions) and every tenancy's namespaces stay.
    let tenancy_namespaces =
        kubectl(&["get", "namespaces", "-l", "commons.dev/tenancy", "-o", "name"]).unwrap();
    assert!(
        tenancy_namespaces.lines().count() > 0,
        "the examples' tenancy namespaces exist before the uninstall"
    );
    helm(&["uninstall", RELEASE, "-n", NS, "--wait"]).unwrap();
    for gone in [
        vec!["-n", NS, "get", "deployment", &name],
        vec!["get", "clusterrole", &name],
        vec!["get", "clusterrolebinding", &name],
    ] {
        assert!(!exists(&gone), "after uninstall: kubectl {}", gone.join(" "));
    }
    for kept in ["tenancies.commons.dev", "tenancyrequests.commons.dev", "ratecards.commons.dev"] {
        assert!(exists(&["get", "crd", kept]), "{kept} removed by the uninstall");
    }
    assert!(exists(&["get", "namespace", REQUESTS_NS]), "the requests namespace was removed");
    // The role the tenancies' owners are bound to stays with them, its rules unchanged.
    assert_eq!(tenant_admin_role()["rules"], rules, "commons:tenant-admin after uninstall");
    let after = kubectl(&["get", "namespaces", "-l", "commons.dev/tenancy", "-o", "name"]).unwrap();
    for ns in tenancy_namespaces.lines() {
        assert!(after.lines().any(|l| l == ns), "{ns} removed by the uninstall");
    }
    let _ = kubectl(&["delete", "namespace", REQUESTS_NS, NS, "--wait=false"]);
}

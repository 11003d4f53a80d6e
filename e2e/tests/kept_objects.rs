//! The first line of defence cannot be switched off from outside: only the apiserver (with the
//! client certificate its admission configuration presents) can call the quota webhook, a
//! connection that sends nothing is closed, and the webhook's configuration and the ClusterRole
//! every owner is bound to are put back within seconds of an edit or a deletion.
//!
//! These tests take the webhook configuration away for a moment, so they live in their own test
//! binary: no other test creates pods meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::Read;
use std::time::{Duration, Instant};

use commons_e2e::{client, operator_metric, wait_for};
use k8s_openapi::api::admissionregistration::v1::{ValidatingWebhook, ValidatingWebhookConfiguration};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const WEBHOOK: &str = "quota.commons.dev";
const ROLE: &str = "commons:tenant-admin";

fn webhook_listen() -> String {
    std::env::var("COMMONS_WEBHOOK_LISTEN").unwrap_or_else(|_| "127.0.0.1:18443".into())
}

fn pki(file: &str) -> String {
    let dir = std::env::var("COMMONS_CLUSTER_DIR")
        .unwrap_or_else(|_| format!("{}/.cache/commons/cluster", std::env::var("HOME").unwrap_or_default()));
    format!("{dir}/pki/{file}")
}

/// POSTs an AdmissionReview to the webhook with curl, presenting `cert` (a name in the cluster's
/// pki/) or no certificate; `Ok(body)` when an HTTP answer came back, `Err(curl's exit code)`.
fn post_review(cert: Option<&str>) -> Result<String, i32> {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "e2e-forged", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "e2e-forged", "name": "forged", "operation": "CREATE",
            "userInfo": {"username": "e2e"}, "dryRun": false,
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "forged", "namespace": "e2e-forged"},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}
        }
    });
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-k", "--max-time", "10", "-H", "Content-Type: application/json", "--data-binary"])
        .arg(review.to_string());
    if let Some(cert) = cert {
        cmd.args(["--cert", &pki(&format!("{cert}.crt")), "--key", &pki(&format!("{cert}.key"))]);
    }
    cmd.arg(format!("https://{}/validate/quota", webhook_listen()));
    let out = cmd.output().unwrap();
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        code => Err(code.unwrap_or(-1)),
    }
}

#[test]
fn only_the_apiserver_can_call_the_quota_webhook() {
    // No client certificate, and a valid certificate of the cluster's own CA (the admin's): both
    // refused in the TLS handshake, before any request: curl reports the handshake failing (35), or
    // the server ending the connection as it sends (55) or receives (56).
    for cert in [None, Some("admin")] {
        let refused = post_review(cert);
        assert!(matches!(refused, Err(35 | 55 | 56)), "client certificate {cert:?} was served: {refused:?}");
    }
    // The certificate the apiserver presents: served (the namespace belongs to no tenancy, so the
    // forged review is simply allowed and nothing is recorded).
    let answer = post_review(Some("apiserver-webhook-client")).unwrap();
    assert!(answer.contains(r#""uid":"e2e-forged""#) && answer.contains(r#""allowed":true"#), "{answer}");
}

#[test]
fn a_connection_that_sends_nothing_is_closed() {
    let mut stream = std::net::TcpStream::connect(webhook_listen()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    // The server gives up on the handshake and closes: end of stream (or a reset), not our timeout.
    let read = stream.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0)) || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the silent connection was not closed by the webhook: {read:?} after {waited:?}"
    );
    assert!(waited < Duration::from_secs(25), "closed only after {waited:?}");
}

fn repairs(kind: &str) -> f64 {
    operator_metric(&format!("commons_kept_object_repairs_total{{kind=\"{kind}\"}}")).unwrap_or(0.0)
}

#[tokio::test]
async fn the_webhook_configuration_is_put_back_after_an_edit_or_a_deletion() {
    let client = client().await.unwrap();
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let before = repairs("ValidatingWebhookConfiguration");
    let hook = |c: &ValidatingWebhookConfiguration| c.webhooks.clone().unwrap_or_default().remove(0);

    // Failing open, and a narrowed rule (pods no longer checked): each undone within seconds.
    type Edit = fn(&mut ValidatingWebhook);
    let edits: [(&str, Edit); 2] = [
        ("failurePolicy: Ignore", |h| h.failure_policy = Some("Ignore".into())),
        ("the pods rule removed", |h| {
            h.rules.as_mut().unwrap().remove(0);
        }),
    ];
    for (what, edit) in edits {
        let mut config = api.get(WEBHOOK).await.unwrap();
        edit(&mut config.webhooks.as_mut().unwrap()[0]);
        api.replace(WEBHOOK, &PostParams::default(), &config).await.unwrap();
        wait_for(&format!("the webhook put back after {what}"), Duration::from_secs(10), || {
            let api = api.clone();
            async move {
                let h = hook(&api.get(WEBHOOK).await.ok()?);
                let pods = h.rules.unwrap_or_default().iter().any(|r| {
                    r.resources.as_deref() == Some(&["pods".to_owned()][..])
                        && r.operations.iter().flatten().any(|o| o == "CREATE")
                });
                (h.failure_policy.as_deref() == Some("Fail") && pods).then_some(())
            }
        })
        .await
        .unwrap();
    }

    let uid = api.get(WEBHOOK).await.unwrap().uid();
    api.delete(WEBHOOK, &DeleteParams::default()).await.unwrap();
    wait_for("the webhook configuration recreated", Duration::from_secs(10), || {
        let (api, uid) = (api.clone(), uid.clone());
        async move { api.get_opt(WEBHOOK).await.ok()?.filter(|c| c.uid() != uid).map(|_| ()) }
    })
    .await
    .unwrap();
    assert!(repairs("ValidatingWebhookConfiguration") >= before + 3.0, "each repair is counted");
}

#[tokio::test]
async fn the_tenant_admin_role_is_put_back_after_an_edit_or_a_deletion() {
    let client = client().await.unwrap();
    let api: Api<ClusterRole> = Api::all(client.clone());
    let want = api.get(ROLE).await.unwrap().rules;
    assert!(want.as_ref().is_some_and(|r| !r.is_empty()));

    // Widened to everything: put back to exactly what owners may do.
    let wide = json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    api.patch(ROLE, &PatchParams::default(), &Patch::Merge(&wide)).await.unwrap();
    wait_for("the widened role put back", Duration::from_secs(10), || {
        let (api, want) = (api.clone(), want.clone());
        async move { (api.get(ROLE).await.ok()?.rules == want).then_some(()) }
    })
    .await
    .unwrap();

    let uid = api.get(ROLE).await.unwrap().uid();
    api.delete(ROLE, &DeleteParams::default()).await.unwrap();
    wait_for("the role recreated", Duration::from_secs(10), || {
        let (api, uid, want) = (api.clone(), uid.clone(), want.clone());
        async move { api.get_opt(ROLE).await.ok()?.filter(|r| r.uid() != uid && r.rules == want).map(|_| ()) }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn deletion_protection_is_put_back_after_a_deletion() {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    const PROTECTION: &str = "tenancy-deletion-protection.commons.dev";
    let client = client().await.unwrap();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let before = repairs("ValidatingAdmissionPolicyBinding");
    // Switched to warn only: put back to deny.
    let mut binding = bindings.get(PROTECTION).await.unwrap();
    binding.spec.validation_actions = vec!["Warn".into()];
    bindings.replace(PROTECTION, &PostParams::default(), &binding).await.unwrap();
    wait_for("the binding denying again", Duration::from_secs(10), || {
        let bindings = bindings.clone();
        async move { (bindings.get(PROTECTION).await.ok()?.spec.validation_actions == ["Deny"]).then_some(()) }
    })
    .await
    .unwrap();
    // The policy deleted: recreated.
    let uid = policies.get(PROTECTION).await.unwrap().uid();
    policies.delete(PROTECTION, &DeleteParams::default()).await.unwrap();
    wait_for("the policy recreated", Duration::from_secs(10), || {
        let policies = policies.clone();
        let uid = uid.clone();
        async move { policies.get_opt(PROTECTION).await.ok()?.filter(|p| p.uid() != uid).map(|_| ()) }
    })
    .await
    .unwrap();
    assert!(repairs("ValidatingAdmissionPolicyBinding") > before);
}

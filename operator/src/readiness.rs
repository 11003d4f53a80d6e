//! Readiness: the apiserver answers and every Commons CRD is installed and Established.

use std::time::Duration;

use commons_api::Readiness;
use commons_api::health::FailingCheck;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// How often readiness is checked while ready.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// How often readiness is checked while not ready.
pub const INTERVAL_NOT_READY: Duration = Duration::from_secs(1);

/// A check of something inside the process (not the apiserver): `Err(reason)` while failing.
pub type LocalCheck = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Whether a CRD is Established (its API is served).
pub fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| conds.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

/// Runs every check once. A failing `degraded` check is reported without making the process
/// unready: what it covers does not work, but serving does.
pub async fn check(
    client: &Client,
    local: &[(&'static str, LocalCheck)],
    degraded: &[(&'static str, LocalCheck)],
) -> Readiness {
    let mut readiness = Readiness::default();
    let version = client.apiserver_version().await;
    match version {
        Ok(_) => readiness.passing.push("apiserver".into()),
        Err(e) => {
            readiness.failing.push(FailingCheck { check: "apiserver".into(), reason: e.to_string() });
            return readiness;
        }
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut missing = Vec::new();
    for crd in commons_crds::generate::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        match api.get_opt(&name).await {
            Ok(Some(found)) if established(&found) => {}
            Ok(Some(_)) => missing.push(format!("{name} is not Established")),
            Ok(None) => missing.push(format!("{name} is not installed")),
            Err(e) => missing.push(format!("{name}: {e}")),
        }
    }
    for (name, check) in local {
        match check() {
            Ok(()) => readiness.passing.push((*name).into()),
            Err(reason) => readiness.failing.push(FailingCheck { check: (*name).into(), reason }),
        }
    }
    for (name, check) in degraded {
        match check() {
            Ok(()) => readiness.passing.push((*name).into()),
            Err(reason) => readiness.degraded.push(FailingCheck { check: (*name).into(), reason }),
        }
    }
    if missing.is_empty() {
        readiness.passing.push("crds".into());
    } else {
        readiness.failing.push(FailingCheck {
            check: "crds".into(),
            reason: format!(
                "{} (install them with `commons crds | kubectl apply --server-side -f -`)",
                missing.join(", ")
            ),
        });
    }
    readiness
}

/// Checks readiness every [`INTERVAL`] (every [`INTERVAL_NOT_READY`] while not ready) and
/// publishes each result, logging only changes.
pub async fn run(
    client: Client,
    tx: watch::Sender<Readiness>,
    metrics: Metrics,
    local: Vec<(&'static str, LocalCheck)>,
    degraded: Vec<(&'static str, LocalCheck)>,
) {
    loop {
        let readiness = check(&client, &local, &degraded).await;
        let pause = if readiness.is_ready() { INTERVAL } else { INTERVAL_NOT_READY };
        metrics.ready.set(i64::from(readiness.is_ready()));
        tx.send_if_modified(|current| {
            if *current == readiness {
                return false;
            }
            if readiness.is_ready() && !readiness.degraded.is_empty() {
                tracing::warn!(checks = ?readiness.passing, degraded = ?readiness.degraded, "ready, degraded");
            } else if readiness.is_ready() {
                tracing::info!(checks = ?readiness.passing, "ready");
            } else {
                tracing::warn!(failing = ?readiness.failing, "not ready");
            }
            *current = readiness;
            true
        });
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceDefinitionCondition, CustomResourceDefinitionStatus,
    };

    fn crd_with(conditions: &[(&str, &str)]) -> CustomResourceDefinition {
        let mut crd = <commons_crds::Tenancy as kube::CustomResourceExt>::crd();
        crd.status = Some(CustomResourceDefinitionStatus {
            conditions: Some(
                conditions
                    .iter()
                    .map(|(t, s)| CustomResourceDefinitionCondition {
                        type_: (*t).into(),
                        status: (*s).into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        crd
    }

    #[test]
    fn established_needs_the_established_condition_true() {
        assert!(established(&crd_with(&[("NamesAccepted", "True"), ("Established", "True")])));
        assert!(!established(&crd_with(&[("NamesAccepted", "True"), ("Established", "False")])));
        assert!(!established(&crd_with(&[("NamesAccepted", "True")])));
        let mut bare = crd_with(&[]);
        bare.status = None;
        assert!(!established(&bare));
    }
}

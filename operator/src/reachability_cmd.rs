//! `commons reachability`: the reachability matrix an auditor reads, computed from the
//! NetworkPolicies, namespaces and pods actually in the cluster (not from Commons' intent).

use commons_crds::labels;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::reachability::{Snapshot, group_matrix, render, service_matrix};

/// Reads every namespace, pod and NetworkPolicy in the cluster.
pub async fn load(client: &Client) -> Result<Snapshot> {
    let lp = ListParams::default();
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|source| Error::Kube { context: "listing namespaces".into(), source })?
        .items;
    let pods = Api::<Pod>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|source| Error::Kube { context: "listing pods".into(), source })?
        .items;
    let policies = Api::<NetworkPolicy>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|source| Error::Kube { context: "listing NetworkPolicies".into(), source })?
        .items;
    Ok(Snapshot { namespaces, pods, policies })
}

/// A reachability matrix: `reach[i][j]` is whether some pod of `names[i]` reaches some pod of
/// `names[j]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    /// What the rows and columns are: tenancies or services.
    pub of: &'static str,
    /// Row and column names.
    pub names: Vec<String>,
    /// `reach[from][to]`.
    pub reach: Vec<Vec<bool>>,
}

/// The tenancy-to-tenancy matrix (tenancy from the namespace label `commons.dev/tenancy`), or with
/// `services` the service-to-service one (pods labelled `commons.dev/hosted-service`, else `app`).
pub fn matrix(snapshot: &Snapshot, services: bool) -> Matrix {
    if services {
        let (names, reach) = service_matrix(snapshot, labels::HOSTED_SERVICE);
        if !names.is_empty() {
            return Matrix { of: "services", names, reach };
        }
        let (names, reach) = service_matrix(snapshot, "app");
        Matrix { of: "services", names, reach }
    } else {
        let (names, reach) = group_matrix(snapshot, labels::TENANCY);
        Matrix { of: "tenancies", names, reach }
    }
}

/// Runs the command: prints the matrix as a table or as JSON.
pub async fn run(services: bool, json: bool) -> Result<String> {
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let snapshot = load(&client).await?;
    let m = matrix(&snapshot, services);
    if json {
        serde_json::to_string_pretty(&m).map_err(|e| Error::Invalid(e.to_string()))
    } else {
        Ok(format!(
            "Reachability between {} (rows reach columns), from {} NetworkPolicies and {} pods:\n{}",
            m.of,
            snapshot.policies.len(),
            snapshot.pods.len(),
            render(&m.names, &m.reach)
        ))
    }
}

//! The floor a Tenancy's creation is measured against: the same client creating the same
//! children directly, with no operator in between (for bench-tenancies).

use std::time::{Duration, Instant};

use commons_crds::Tenancy;
use commons_operator::tenancy::desired;
use commons_operator::tenancy::quota::Amounts;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::E2eError;

/// How the floor writes each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A plain create (POST): the cheapest write for the apiserver.
    Create,
    /// Server-side apply (PATCH), as Commons writes: the apiserver also works out which fields
    /// each manager owns.
    Apply,
}

impl std::fmt::Display for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Write::Create => "created",
            Write::Apply => "server-side applied",
        })
    }
}

/// Writes `obj` (without owner references: there is no Tenancy to own it).
async fn create<K>(api: Api<K>, mut obj: K, how: Write) -> Result<(), E2eError>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    obj.meta_mut().owner_references = None;
    match how {
        Write::Create => {
            api.create(&PostParams::default(), &obj).await?;
        }
        Write::Apply => {
            let name = obj.meta().name.clone().unwrap_or_default();
            api.patch(&name, &PatchParams::apply("commons-floor").force(), &Patch::Apply(&obj)).await?;
        }
    }
    Ok(())
}

/// Everything Commons makes for `tenancy`, written directly, in the order Commons makes it.
async fn children(client: &Client, tenancy: &Tenancy, hard: &Amounts, how: Write) -> Result<(), E2eError> {
    let namespaces = desired::namespaces(tenancy);
    let own: Vec<String> = namespaces.iter().map(ResourceExt::name_any).collect();
    for ns in namespaces {
        create(Api::<Namespace>::all(client.clone()), ns, how).await?;
    }
    for ns in &own {
        create(
            Api::<ResourceQuota>::namespaced(client.clone(), ns),
            desired::resource_quota(tenancy, ns, hard),
            how,
        )
        .await?;
    }
    for ns in &own {
        create(Api::<LimitRange>::namespaced(client.clone(), ns), desired::limit_range(tenancy, ns), how)
            .await?;
        create(
            Api::<NetworkPolicy>::namespaced(client.clone(), ns),
            desired::baseline_policy(tenancy, ns, &own),
            how,
        )
        .await?;
        create(Api::<RoleBinding>::namespaced(client.clone(), ns), desired::owners_binding(tenancy, ns), how)
            .await?;
    }
    create(Api::<ClusterRole>::all(client.clone()), desired::reader_role(tenancy), how).await?;
    create(Api::<ClusterRoleBinding>::all(client.clone()), desired::reader_binding(tenancy), how).await?;
    Ok(())
}

/// Writes the children of each of `tenancies` directly, `parallel` tenancies at a time, and
/// returns how long that took.
pub async fn create_directly(
    client: &Client,
    tenancies: &[Tenancy],
    parallel: usize,
    how: Write,
) -> Result<Duration, E2eError> {
    let started = Instant::now();
    let jobs = tenancies.iter().map(|t| async move {
        let hard = desired::quota_limits(t).unwrap_or_default();
        children(client, t, &hard, how).await
    });
    let outcomes: Vec<Result<(), E2eError>> =
        futures::stream::iter(jobs).buffer_unordered(parallel).collect().await;
    let elapsed = started.elapsed();
    outcomes.into_iter().collect::<Result<Vec<()>, E2eError>>()?;
    Ok(elapsed)
}

/// Deletes what [`create_directly`] made, and waits until its namespaces are gone (so their
/// deletion does not weigh on what is measured next).
pub async fn delete_directly(client: &Client, tenancies: &[Tenancy]) -> Result<(), E2eError> {
    let names: std::collections::BTreeSet<String> =
        tenancies.iter().flat_map(desired::namespaces).map(|ns| ns.name_any()).collect();
    for t in tenancies {
        for ns in desired::namespaces(t) {
            let _ = Api::<Namespace>::all(client.clone())
                .delete(&ns.name_any(), &DeleteParams::background())
                .await;
        }
        let name = desired::reader_name(t);
        let _ = Api::<ClusterRole>::all(client.clone()).delete(&name, &DeleteParams::background()).await;
        let _ =
            Api::<ClusterRoleBinding>::all(client.clone()).delete(&name, &DeleteParams::background()).await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    crate::wait_for("the floor's namespaces gone", Duration::from_secs(900), || {
        let (namespaces, names) = (namespaces.clone(), names.clone());
        async move {
            let left = namespaces.list_metadata(&Default::default()).await.ok()?;
            (!left.items.iter().any(|n| names.contains(&n.name_any()))).then_some(())
        }
    })
    .await?;
    Ok(())
}

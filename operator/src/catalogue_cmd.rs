//! `commons catalogue`: the applications store, read from the live cluster.

use std::sync::Arc;

use commons_crds::hosted_service::HostedService;
use commons_crds::subscription::Subscription;
use commons_crds::tenancy::Tenancy;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::catalogue::{entries, render};
use crate::error::{Error, Result};

/// Every object of a kind in the cluster (for the one-shot commands).
pub(crate) async fn list<K>(client: &Client) -> Result<Vec<Arc<K>>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let kind = K::plural(&());
    Ok(Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube { context: format!("listing {kind}"), source })?
        .items
        .into_iter()
        .map(Arc::new)
        .collect())
}

/// Runs the command: the catalogue as a table, or as JSON.
pub async fn run(json: bool) -> Result<String> {
    let client = Client::try_default().await.map_err(Error::KubeConfig)?;
    let hosted = list::<HostedService>(&client).await?;
    let subscriptions = list::<Subscription>(&client).await?;
    let namespaces = list::<Namespace>(&client).await?;
    let tenancies = list::<Tenancy>(&client).await?;
    let tenancy_of = |ns: &str| {
        let namespace = namespaces.iter().find(|n| n.name_any() == ns)?;
        let name = crate::hosted::admit::tenancy_of(namespace)?;
        tenancies.iter().find(|t| t.name_any() == name).cloned()
    };
    let list = entries(&hosted, &subscriptions, tenancy_of);
    if json {
        serde_json::to_string_pretty(&list).map_err(|e| Error::Invalid(e.to_string()))
    } else if list.is_empty() {
        Ok("The catalogue is empty: no HostedService has spec.catalogue.publish true.".into())
    } else {
        let noun = if list.len() == 1 { "service" } else { "services" };
        Ok(format!("The catalogue: {} published {noun}\n{}", list.len(), render(&list)))
    }
}

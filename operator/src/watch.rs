//! Watches shared by the controllers: reflected streams and owner mapping.

use commons_crds::labels;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// A reflected watch of `K` (only what Commons manages, unless `all`), feeding a store and
/// yielding every touched object so a controller can map it to the object that owns it.
pub fn reflect<K>(
    client: &Client,
    all: bool,
) -> (Store<K>, impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let config = if all {
        watcher::Config::default()
    } else {
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER))
    };
    let stream =
        watcher(Api::<K>::all(client.clone()), config).default_backoff().reflect(writer).touched_objects();
    (store, stream)
}

/// The `Owner` that controls `obj`, if any. Cluster-scoped owners are keyed without a namespace
/// (kube-runtime's `owns` would key them by the child's namespace, so one owner could be
/// reconciled twice at once).
pub fn owned_by<Owner, K>(obj: K) -> Option<ObjectRef<Owner>>
where
    Owner: Resource<DynamicType = ()>,
    K: Resource,
{
    let kind = Owner::kind(&());
    let group = Owner::group(&());
    obj.owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true) && o.kind == kind && o.api_version.starts_with(&format!("{group}/"))
        })
        .map(|o| ObjectRef::new(&o.name))
}

/// A reflector store that can say, without waiting, whether it has had its first full list.
pub trait Synced {
    /// `Some(true)` once synced, `Some(false)` while still filling, `None` if its writer is gone.
    fn synced(&self) -> Option<bool>;
}

impl<K> Synced for Store<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn synced(&self) -> Option<bool> {
        use futures::FutureExt;
        match self.wait_until_ready().now_or_never() {
            Some(Ok(())) => Some(true),
            Some(Err(_)) => None,
            None => Some(false),
        }
    }
}

/// Waits (up to 30 s) until every store has had its first full list, so a reconcile never mistakes
/// a store that is still filling for objects that are missing. Polled, not awaited: a waiter parked
/// before the stores fill is not reliably woken.
pub async fn synced(stores: &[&(dyn Synced + Sync)]) -> Result<(), crate::error::Error> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let states: Vec<Option<bool>> = stores.iter().map(|s| s.synced()).collect();
        if states.iter().any(Option::is_none) {
            return Err(crate::error::Error::StoreClosed);
        }
        if states.iter().all(|s| *s == Some(true)) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(crate::error::Error::StoreNotReady);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

//! Cluster-scoped objects Commons owns by name and that no owner object carries (the
//! `commons:tenant-admin` ClusterRole, the `quota.commons.dev` webhook configuration): each is
//! watched, and an edit or a deletion is put back within seconds, as the controllers do for the
//! children of a Tenancy.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::watch::Watches;

/// How soon a failed repair is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// What the kept object must be now.
pub type Desired<K> = Arc<dyn Fn() -> K + Send + Sync>;

/// The part of the stored object that is compared with what is desired (for example only
/// Commons' own entry of a list others may add to); the identity by default.
pub type View<K> = fn(&K) -> K;

/// Applies `want`; when server-side apply cannot restore it (a set-type list keeps an entry
/// another field manager added, such as `Warn` beside `Deny`, so the result still differs or is
/// invalid), replaces the fields Commons sets with a JSON merge patch, which replaces lists whole.
async fn put_back<K>(api: &Api<K>, want: &K, view: View<K>) -> crate::error::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    if let Ok(stored) = crate::apply::apply(api, want).await
        && crate::compare::difference(want, Some(&view(&stored))).is_none()
    {
        return Ok(());
    }
    let name = want.name_any();
    crate::apply::count_write(&K::kind(&()), "merge");
    let mut patch = serde_json::to_value(want).map_err(|e| {
        crate::error::Error::Invalid(format!("cannot serialise {} {name}: {e}", K::kind(&())))
    })?;
    if let Some(meta) = patch.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
        meta.retain(|k, _| k == "labels" || k == "annotations");
    }
    api.patch(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.map_err(
        |source| crate::error::Error::Kube { context: format!("replacing {} {name}", K::kind(&())), source },
    )?;
    Ok(())
}

/// Keeps the object that `desired` names as `desired` says, until `stop`: every change to it (and
/// its deletion) is compared with `desired()` through `view`, and what differs is applied again.
pub fn keep<K>(
    watches: &Watches,
    desired: Desired<K>,
    view: View<K>,
    repairs: prometheus::IntCounterVec,
    stop: tokio::sync::watch::Receiver<bool>,
) where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let name = desired().name_any();
    let kind = K::kind(&()).to_string();
    let api: Api<K> = Api::all(watches.client().clone());
    let events = watches
        .events::<K>(watcher::Config::default().fields(&format!("metadata.name={name}")))
        .take_until(crate::shutdown::stopped(stop));
    tokio::spawn(async move {
        tokio::pin!(events);
        // What the watch shows now; `None` until its first list, `Some(None)` when absent.
        let mut seen: Option<Option<K>> = None;
        let mut listing: Option<K> = None;
        let mut retry_at: Option<tokio::time::Instant> = None;
        // Whether it has been as desired since Commons started (its first creation is no repair).
        let mut kept = false;
        loop {
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.next() => match event {
                    None => return,
                    Some(Ok(watcher::Event::Apply(obj))) => seen = Some(Some(obj)),
                    Some(Ok(watcher::Event::Delete(_))) => seen = Some(None),
                    Some(Ok(watcher::Event::Init)) => listing = None,
                    Some(Ok(watcher::Event::InitApply(obj))) => listing = Some(obj),
                    Some(Ok(watcher::Event::InitDone)) => seen = Some(listing.take()),
                    Some(Err(e)) => {
                        tracing::debug!(%kind, %name, error = %e, "watch of a kept object failed");
                        continue;
                    }
                },
                () = retry => retry_at = None,
            }
            let Some(observed) = &seen else { continue };
            let want = desired();
            let Some(why) = crate::compare::difference(&want, observed.as_ref().map(view).as_ref()) else {
                kept = true;
                continue;
            };
            if kept {
                tracing::warn!(%kind, %name, difference = %why, "putting back an object Commons keeps");
                repairs.with_label_values(&[&kind]).inc();
            } else {
                tracing::info!(%kind, %name, difference = %why, "applying an object Commons keeps");
            }
            if let Err(e) = put_back(&api, &want, view).await {
                tracing::warn!(%kind, %name, error = %e, "cannot put back an object Commons keeps; trying again");
                retry_at = Some(tokio::time::Instant::now() + RETRY);
            }
        }
    });
}

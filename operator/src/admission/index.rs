//! Objects of one kind grouped by namespace, kept from a watch, so that counting a tenancy's usage
//! reads only its own namespaces' objects, not every pod in the cluster.
//!
//! Follows a watch's events as a reflector's store does: `Apply` and `Delete` change the live
//! view at once; a (re)list — `Init`, `InitApply`..., `InitDone` — is gathered apart and replaces
//! the live view when complete, so objects deleted while the watch was down disappear.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::watcher::Event;

type Objects<K> = HashMap<String, HashMap<String, Arc<K>>>;

/// Objects by namespace, then by name.
pub struct ByNamespace<K> {
    inner: Arc<RwLock<Inner<K>>>,
}

struct Inner<K> {
    live: Objects<K>,
    relist: Option<Objects<K>>,
    synced: bool,
}

impl<K> std::fmt::Debug for ByNamespace<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.debug_struct("ByNamespace")
            .field("namespaces", &inner.live.len())
            .field("synced", &inner.synced)
            .finish_non_exhaustive()
    }
}

impl<K> Clone for ByNamespace<K> {
    fn clone(&self) -> Self {
        ByNamespace { inner: self.inner.clone() }
    }
}

impl<K> Default for ByNamespace<K> {
    fn default() -> Self {
        ByNamespace {
            inner: Arc::new(RwLock::new(Inner { live: HashMap::new(), relist: None, synced: false })),
        }
    }
}

fn key<K: Resource>(obj: &K) -> Option<(String, String)> {
    let meta = obj.meta();
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

fn insert<K: Resource + Clone>(objects: &mut Objects<K>, obj: &K) {
    if let Some((namespace, name)) = key(obj) {
        objects.entry(namespace).or_default().insert(name, Arc::new(obj.clone()));
    }
}

fn remove<K: Resource>(objects: &mut Objects<K>, obj: &K) {
    if let Some((namespace, name)) = key(obj)
        && let Some(in_namespace) = objects.get_mut(&namespace)
    {
        in_namespace.remove(&name);
        if in_namespace.is_empty() {
            objects.remove(&namespace);
        }
    }
}

impl<K: Resource + Clone> ByNamespace<K> {
    /// Follows one watch event.
    pub fn apply(&self, event: &Event<K>) {
        let mut inner = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Apply(obj) => insert(&mut inner.live, obj),
            Event::Delete(obj) => remove(&mut inner.live, obj),
            Event::Init => inner.relist = Some(HashMap::new()),
            Event::InitApply(obj) => insert(inner.relist.get_or_insert_with(HashMap::new), obj),
            Event::InitDone => {
                if let Some(listed) = inner.relist.take() {
                    inner.live = listed;
                }
                inner.synced = true;
            }
        }
    }

    /// Whether the first full list has been seen.
    pub fn synced(&self) -> bool {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).synced
    }

    /// Every object in the given namespaces.
    pub fn in_namespaces<'a>(&self, namespaces: impl IntoIterator<Item = &'a String>) -> Vec<Arc<K>> {
        let inner = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        namespaces
            .into_iter()
            .filter_map(|ns| inner.live.get(ns))
            .flat_map(|objs| objs.values().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ObjectMeta;

    fn pod(namespace: &str, name: &str, uid: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn uids(index: &ByNamespace<Pod>, namespaces: &[&str]) -> Vec<String> {
        let namespaces: Vec<String> = namespaces.iter().map(|s| (*s).to_owned()).collect();
        let mut out: Vec<String> =
            index.in_namespaces(&namespaces).iter().filter_map(|p| p.metadata.uid.clone()).collect();
        out.sort();
        out
    }

    #[test]
    fn follows_applies_deletes_and_relists_by_namespace() {
        let index = ByNamespace::<Pod>::default();
        assert!(!index.synced());
        index.apply(&Event::Init);
        index.apply(&Event::InitApply(pod("a", "p", "1")));
        index.apply(&Event::InitApply(pod("b", "q", "2")));
        assert!(uids(&index, &["a", "b"]).is_empty(), "a list counts once complete");
        index.apply(&Event::InitDone);
        assert!(index.synced());
        assert_eq!(uids(&index, &["a"]), ["1"]);
        assert_eq!(uids(&index, &["a", "b", "c"]), ["1", "2"]);

        // A pod replaced under the same name counts once, as the new one.
        index.apply(&Event::Apply(pod("a", "p", "3")));
        index.apply(&Event::Apply(pod("c", "r", "4")));
        assert_eq!(uids(&index, &["a", "c"]), ["3", "4"]);
        index.apply(&Event::Delete(pod("c", "r", "4")));
        assert!(uids(&index, &["c"]).is_empty());

        // A relist after an outage drops what was deleted meanwhile; the old view serves until
        // the new list is complete.
        index.apply(&Event::Init);
        index.apply(&Event::InitApply(pod("b", "q", "2")));
        assert_eq!(uids(&index, &["a", "b"]), ["2", "3"]);
        index.apply(&Event::InitDone);
        assert_eq!(uids(&index, &["a", "b"]), ["2"]);
        assert!(index.synced());
    }
}

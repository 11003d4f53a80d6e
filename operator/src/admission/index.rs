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

/// Objects by group, then by their `namespace/name`.
type Objects<K> = HashMap<String, HashMap<String, Arc<K>>>;

/// Objects grouped by a key of theirs: their namespace ([`ByNamespace::default`]), or any key
/// read from the object ([`ByNamespace::grouped_by`]), such as a namespace's tenancy label. An
/// object whose key changes moves to its new group.
pub struct ByNamespace<K> {
    inner: Arc<RwLock<Inner<K>>>,
    group: fn(&K) -> Option<String>,
}

struct Inner<K> {
    live: Groups<K>,
    relist: Option<Groups<K>>,
    synced: bool,
}

/// The objects by group, and the group each object is in.
struct Groups<K> {
    objects: Objects<K>,
    located: HashMap<String, String>,
}

impl<K> Default for Groups<K> {
    fn default() -> Self {
        Groups { objects: HashMap::new(), located: HashMap::new() }
    }
}

impl<K> std::fmt::Debug for ByNamespace<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.debug_struct("ByNamespace")
            .field("groups", &inner.live.objects.len())
            .field("synced", &inner.synced)
            .finish_non_exhaustive()
    }
}

impl<K> Clone for ByNamespace<K> {
    fn clone(&self) -> Self {
        ByNamespace { inner: self.inner.clone(), group: self.group }
    }
}

impl<K: Resource + Clone> Default for ByNamespace<K> {
    fn default() -> Self {
        ByNamespace::grouped_by(|obj| obj.meta().namespace.clone())
    }
}

fn key<K: Resource>(obj: &K) -> Option<String> {
    let meta = obj.meta();
    Some(format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref()?))
}

impl<K: Resource + Clone> Groups<K> {
    fn insert(&mut self, obj: &K, group: Option<String>) {
        self.remove(obj);
        if let (Some(key), Some(group)) = (key(obj), group) {
            self.objects.entry(group.clone()).or_default().insert(key.clone(), Arc::new(obj.clone()));
            self.located.insert(key, group);
        }
    }

    fn remove(&mut self, obj: &K) {
        let Some(key) = key(obj) else { return };
        if let Some(group) = self.located.remove(&key)
            && let Some(members) = self.objects.get_mut(&group)
        {
            members.remove(&key);
            if members.is_empty() {
                self.objects.remove(&group);
            }
        }
    }
}

impl<K: Resource + Clone> ByNamespace<K> {
    /// An index grouping objects by `group` (objects it gives no group are not kept).
    pub fn grouped_by(group: fn(&K) -> Option<String>) -> Self {
        ByNamespace {
            inner: Arc::new(RwLock::new(Inner { live: Groups::default(), relist: None, synced: false })),
            group,
        }
    }

    /// Follows one watch event.
    pub fn apply(&self, event: &Event<K>) {
        let mut inner = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Apply(obj) => inner.live.insert(obj, (self.group)(obj)),
            Event::Delete(obj) => inner.live.remove(obj),
            Event::Init => inner.relist = Some(Groups::default()),
            Event::InitApply(obj) => {
                inner.relist.get_or_insert_with(Groups::default).insert(obj, (self.group)(obj))
            }
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

    /// Every object in the given groups (namespaces, for the default grouping).
    pub fn in_namespaces<'a>(&self, groups: impl IntoIterator<Item = &'a String>) -> Vec<Arc<K>> {
        let inner = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        groups
            .into_iter()
            .filter_map(|g| inner.live.objects.get(g))
            .flat_map(|objs| objs.values().cloned())
            .collect()
    }

    /// Every object in `group`.
    pub fn in_group(&self, group: &str) -> Vec<Arc<K>> {
        let inner = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.live.objects.get(group).map(|objs| objs.values().cloned().collect()).unwrap_or_default()
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

    #[test]
    fn an_object_whose_key_changes_moves_to_its_new_group() {
        let by_label = ByNamespace::<Pod>::grouped_by(|p| p.metadata.labels.as_ref()?.get("t").cloned());
        let labelled = |t: Option<&str>| {
            let mut p = pod("ns", "p", "1");
            p.metadata.labels = t.map(|t| [("t".to_owned(), t.to_owned())].into());
            p
        };
        by_label.apply(&Event::Apply(labelled(Some("a"))));
        assert_eq!(by_label.in_group("a").len(), 1);
        by_label.apply(&Event::Apply(labelled(Some("b"))));
        assert!(by_label.in_group("a").is_empty(), "moved out of its old group");
        assert_eq!(by_label.in_group("b").len(), 1);
        by_label.apply(&Event::Apply(labelled(None)));
        assert!(by_label.in_group("b").is_empty(), "without a key it is not kept");
    }
}

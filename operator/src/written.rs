//! The status Commons last wrote to each object, until the store shows it.
//!
//! A new object's children are made in its first reconcile, and their watch events trigger more
//! reconciles, often before the watch has delivered that reconcile's own status write: those would
//! find the stored status stale and write the same status again, and announce the same transition
//! again (seen: 1.45 status writes per new tenancy; 2.73 per new HostedService, with 1.73 Events).
//! A status is not written (nor its transitions announced) again when the object is still the
//! version it was written from and the status is the one written.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use kube::Resource;
use serde::Serialize;

/// By object uid: the resourceVersion the status was written from, and a hash of that status.
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<String, (String, u64)>>);

/// The instants a status stamps when it is built (a condition's lastTransitionTime, a
/// subscription's activeSince and endedAt): a reconcile from a stale store would stamp them anew,
/// so they are left out of the comparison (and the first stamp written stands).
const STAMPS: [&str; 3] = ["lastTransitionTime", "activeSince", "endedAt"];

fn without_stamps(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !STAMPS.contains(&k.as_str()));
            map.values_mut().for_each(without_stamps);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_stamps),
        _ => {}
    }
}

fn digest<S: Serialize>(status: &S) -> u64 {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    without_stamps(&mut value);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut h);
    h.finish()
}

fn key<K: Resource>(obj: &K) -> Option<(String, String)> {
    Some((obj.meta().uid.clone()?, obj.meta().resource_version.clone()?))
}

impl Written {
    /// Whether `status` was written from this very version of `obj` (so the apiserver holds it
    /// and the store has not caught up yet). Forgets a write the store has caught up with.
    pub fn already<K: Resource, S: Serialize>(&self, obj: &K, status: &S) -> bool {
        let Some((uid, version)) = key(obj) else { return false };
        let mut written = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match written.get(&uid) {
            Some((from, hash)) if *from == version => *hash == digest(status),
            Some(_) => {
                written.remove(&uid);
                false
            }
            None => false,
        }
    }

    /// Records that `status` was written from this version of `obj`.
    pub fn wrote<K: Resource, S: Serialize>(&self, obj: &K, status: &S) {
        if let Some((uid, version)) = key(obj) {
            let mut written = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            written.insert(uid, (version, digest(status)));
        }
    }

    /// Whether a status was written from this very version of `obj` (its store has not caught up
    /// with that write yet).
    pub fn wrote_from<K: Resource>(&self, obj: &K) -> bool {
        let Some((uid, version)) = key(obj) else { return false };
        let written = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        written.get(&uid).is_some_and(|(from, _)| *from == version)
    }

    /// A sink for a shared watch that forgets each object as its deletion is seen.
    pub fn forget_deleted<K: Resource + 'static>(
        written: std::sync::Arc<Written>,
    ) -> crate::reflectors::Sink<K> {
        Box::new(move |event| {
            if let kube::runtime::watcher::Event::Delete(obj) = event {
                written.forget(obj);
            }
        })
    }

    /// Forgets `obj` (it is being deleted).
    pub fn forget<K: Resource>(&self, obj: &K) {
        if let Some(uid) = &obj.meta().uid {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::fixtures::TenancyBuilder;
    use commons_crds::tenancy::{Tenancy, TenancyStatus};

    fn at(version: &str) -> Tenancy {
        let mut t = TenancyBuilder::new("t").build();
        t.metadata.uid = Some("uid-t".into());
        t.metadata.resource_version = Some(version.into());
        t
    }

    #[test]
    fn the_same_status_from_the_same_version_is_not_written_twice() {
        let written = Written::default();
        let status = TenancyStatus { observed_generation: Some(1), ..TenancyStatus::default() };
        assert!(!written.already(&at("10"), &status), "nothing written yet");
        written.wrote(&at("10"), &status);
        assert!(written.already(&at("10"), &status), "the store still shows version 10");
        let other = TenancyStatus { observed_generation: Some(2), ..TenancyStatus::default() };
        assert!(!written.already(&at("10"), &other), "another status is written");
        assert!(!written.already(&at("11"), &status), "the store caught up: compare with it instead");
        assert!(!written.already(&at("10"), &status), "and the write is forgotten");
    }

    #[test]
    fn a_deleted_object_is_forgotten() {
        let written = std::sync::Arc::new(Written::default());
        let status = TenancyStatus { observed_generation: Some(1), ..TenancyStatus::default() };
        written.wrote(&at("10"), &status);
        let mut sink = Written::forget_deleted::<Tenancy>(written.clone());
        sink(&kube::runtime::watcher::Event::Delete(at("10")));
        assert!(!written.already(&at("10"), &status));
        assert!(written.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_status_stamped_again_from_a_stale_store_is_the_same_status() {
        let written = Written::default();
        let stamped = |secs: i64| TenancyStatus {
            observed_generation: Some(1),
            conditions: vec![crate::conditions::condition("Ready", true, "Ready", "ok", Some(1))]
                .into_iter()
                .map(|mut c| {
                    c.last_transition_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        jiff::Timestamp::from_second(secs).unwrap(),
                    );
                    c
                })
                .collect(),
            ..TenancyStatus::default()
        };
        written.wrote(&at("10"), &stamped(100));
        assert!(written.already(&at("10"), &stamped(200)), "only the stamp differs");
    }
}

//! The status Commons last wrote to each Tenancy, until the store shows it.
//!
//! A new tenancy's children are made in its first reconcile, and their watch events trigger more
//! reconciles, often before the watch has delivered that reconcile's own status write: those would
//! find the stored status stale and write the same status again (seen: 1.45 status writes per new
//! tenancy). A status is not written again when the Tenancy is still the version it was written
//! from and the status is the one written.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use commons_crds::tenancy::{Tenancy, TenancyStatus};

/// By Tenancy uid: the resourceVersion the status was written from, and a hash of that status.
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<String, (String, u64)>>);

fn digest(status: &TenancyStatus) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(status).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn key(tenancy: &Tenancy) -> Option<(String, String)> {
    Some((tenancy.metadata.uid.clone()?, tenancy.metadata.resource_version.clone()?))
}

impl Written {
    /// Whether `status` was written from this very version of `tenancy` (so the apiserver holds it
    /// and the store has not caught up yet). Forgets a write the store has caught up with.
    pub fn already(&self, tenancy: &Tenancy, status: &TenancyStatus) -> bool {
        let Some((uid, version)) = key(tenancy) else { return false };
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

    /// Records that `status` was written from this version of `tenancy`.
    pub fn wrote(&self, tenancy: &Tenancy, status: &TenancyStatus) {
        if let Some((uid, version)) = key(tenancy) {
            let mut written = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            written.insert(uid, (version, digest(status)));
        }
    }

    /// Forgets `tenancy` (it is being deleted).
    pub fn forget(&self, tenancy: &Tenancy) {
        if let Some(uid) = &tenancy.metadata.uid {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::fixtures::TenancyBuilder;

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
}

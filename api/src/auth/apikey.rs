//! API keys for machine clients (a finance system pulling reports nightly). A key is
//! `cmk_<id>_<secret>`: the id finds the stored record, and only the SHA-256 of the whole key is
//! stored, so the ledger's contents do not let anyone call the API. The secret is 256 random bits,
//! so a fast hash is enough (there is nothing to guess), and the comparison takes the same time
//! wherever the hashes differ.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// Every key starts with this, so a key pasted in the wrong place is recognisable (and secret
/// scanners can find it).
pub const PREFIX: &str = "cmk_";

/// The roles a key can be given; what each may do is RBAC's (docs/api.md).
pub const ROLES: [&str; 4] = ["requester", "finance", "finance-central", "platform-admin"];

/// A key as stored: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The public part of the key, shown in listings.
    pub id: String,
    /// SHA-256 of the whole key, lowercase hex.
    pub hash: String,
    /// The organisation the key acts for.
    pub organisation: String,
    /// Its role.
    pub role: String,
    /// What the key is for.
    pub description: String,
    /// Who made it.
    pub created_by: String,
    /// Milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Milliseconds since the epoch; the key is refused from then on.
    pub expires_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// Where keys are kept (the ledger, in the `commons` binary).
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// The key with this id, revoked or not.
    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredKey>, String>>;
}

/// A new key: the text to give the client once, its id and its hash.
#[derive(Debug)]
pub struct NewKey {
    /// The whole key: shown once, never stored.
    pub key: String,
    /// Its id.
    pub id: String,
    /// Its hash.
    pub hash: String,
}

/// Makes a key from the system's secure random source.
pub fn generate() -> Result<NewKey, String> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rng.fill(&mut id).map_err(|_| "the system's random source failed".to_owned())?;
    rng.fill(&mut secret).map_err(|_| "the system's random source failed".to_owned())?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let key = format!("{PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
    Ok(NewKey { hash: hash(&key), key, id })
}

/// SHA-256 of a key, lowercase hex.
pub fn hash(key: &str) -> String {
    digest(&SHA256, key.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The id a presented key claims, if it has the shape of a key.
pub fn id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() == 43).then_some(id)
}

/// Why a presented key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// Not a key's shape, no such id, or the hash differs.
    #[error("no such key")]
    Unknown,
    /// Revoked.
    #[error("the key was revoked")]
    Revoked,
    /// Expired.
    #[error("the key has expired")]
    Expired,
}

/// Checks a presented key against its stored record at `now_ms`.
pub fn check(presented: &str, stored: &StoredKey, now_ms: i64) -> Result<(), KeyRefusal> {
    if !same(hash(presented).as_bytes(), stored.hash.as_bytes()) {
        return Err(KeyRefusal::Unknown);
    }
    if stored.revoked_at_ms.is_some() {
        return Err(KeyRefusal::Revoked);
    }
    if now_ms >= stored.expires_at_ms {
        return Err(KeyRefusal::Expired);
    }
    Ok(())
}

/// Equal, in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(new: &NewKey) -> StoredKey {
        StoredKey {
            id: new.id.clone(),
            hash: new.hash.clone(),
            organisation: "northshire-county-council".into(),
            role: "finance".into(),
            description: "nightly".into(),
            created_by: "pat".into(),
            created_at_ms: 0,
            expires_at_ms: 1_000,
            revoked_at_ms: None,
        }
    }

    #[test]
    fn a_new_key_has_its_id_inside_and_only_its_hash_is_kept() {
        let new = generate().unwrap();
        assert_eq!(id_of(&new.key), Some(new.id.as_str()));
        assert_eq!(new.hash.len(), 64);
        assert!(!new.hash.contains(&new.key[4..]));
        assert_ne!(generate().unwrap().key, new.key);
    }

    #[test]
    fn keys_are_refused_when_changed_revoked_or_expired() {
        let new = generate().unwrap();
        let record = stored(&new);
        assert_eq!(check(&new.key, &record, 999), Ok(()));
        let mut changed = new.key.clone();
        let last = changed.pop().unwrap();
        changed.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(check(&changed, &record, 0), Err(KeyRefusal::Unknown));
        assert_eq!(check(&new.key, &record, 1_000), Err(KeyRefusal::Expired));
        let revoked = StoredKey { revoked_at_ms: Some(5), ..record };
        assert_eq!(check(&new.key, &revoked, 0), Err(KeyRefusal::Revoked));
    }

    #[test]
    fn only_the_shape_of_a_key_has_an_id() {
        assert_eq!(id_of("cmk_0123456789ab_short"), None);
        assert_eq!(id_of("eyJhbGciOi.x.y"), None);
        assert_eq!(id_of(&format!("cmk_zzzzzzzzzzzz_{}", "a".repeat(43))), None);
        assert_eq!(id_of(&format!("cmk_0123456789ab_{}", "a".repeat(43))), Some("0123456789ab"));
    }
}

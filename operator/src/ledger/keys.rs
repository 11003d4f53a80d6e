//! API keys in the ledger's database: made, listed, revoked, found. Only each key's hash is kept
//! (`commons_api::auth::apikey`); the tables' triggers keep a key from changing but by revocation.

use commons_api::auth::apikey::{KeyStore, StoredKey};
use futures::future::BoxFuture;

use super::{Ledger, Result, db};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    hash: String,
    organisation: String,
    role: String,
    description: String,
    created_by: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    revoked_at_ms: Option<i64>,
}

impl From<Row> for StoredKey {
    fn from(r: Row) -> Self {
        StoredKey {
            id: r.id,
            hash: r.hash,
            organisation: r.organisation,
            role: r.role,
            description: r.description,
            created_by: r.created_by,
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            revoked_at_ms: r.revoked_at_ms,
        }
    }
}

const ALL: &str = "SELECT id, hash, organisation, role, description, created_by, created_at_ms, \
    expires_at_ms, revoked_at_ms FROM api_key ORDER BY created_at_ms, id";
const ONE: &str = "SELECT id, hash, organisation, role, description, created_by, created_at_ms, \
    expires_at_ms, revoked_at_ms FROM api_key WHERE id = $1";
const INSERT: &str = "INSERT INTO api_key (id, hash, organisation, role, description, created_by, \
    created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const REVOKE: &str =
    "UPDATE api_key SET revoked_at_ms = $2, revoked_by = $3 WHERE id = $1 AND revoked_at_ms IS NULL";

impl Ledger {
    /// Stores a new key's record.
    pub async fn add_api_key(&self, key: &StoredKey) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(INSERT)
                .bind(&key.id)
                .bind(&key.hash)
                .bind(&key.organisation)
                .bind(&key.role)
                .bind(&key.description)
                .bind(&key.created_by)
                .bind(key.created_at_ms)
                .bind(key.expires_at_ms)
                .execute(pool)
                .await
                .map_err(db("storing an API key"))?;
        });
        Ok(())
    }

    /// Every key, oldest first (revoked and expired ones too).
    pub async fn api_keys(&self) -> Result<Vec<StoredKey>> {
        let rows: Vec<Row> = on_pool!(self, |pool| {
            sqlx::query_as(ALL).fetch_all(pool).await.map_err(db("listing API keys"))?
        });
        Ok(rows.into_iter().map(StoredKey::from).collect())
    }

    /// The key with this id.
    pub async fn api_key(&self, id: &str) -> Result<Option<StoredKey>> {
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(ONE).bind(id).fetch_optional(pool).await.map_err(db("reading an API key"))?
        });
        Ok(row.map(StoredKey::from))
    }

    /// Revokes a key; whether it was live (false: no such key, or revoked already).
    pub async fn revoke_api_key(&self, id: &str, at_ms: i64, by: &str) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(REVOKE)
                .bind(id)
                .bind(at_ms)
                .bind(by)
                .execute(pool)
                .await
                .map_err(db("revoking an API key"))?
                .rows_affected()
        });
        Ok(done == 1)
    }
}

/// The API's key store: the ledger.
#[derive(Debug, Clone)]
pub struct LedgerKeys(pub Ledger);

impl KeyStore for LedgerKeys {
    fn find(&self, id: &str) -> BoxFuture<'_, std::result::Result<Option<StoredKey>, String>> {
        let id = id.to_owned();
        Box::pin(async move { self.0.api_key(&id).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> StoredKey {
        StoredKey {
            id: id.into(),
            hash: format!("{id}-hash"),
            organisation: "northshire-county-council".into(),
            role: "finance".into(),
            description: "nightly reports".into(),
            created_by: "pat".into(),
            created_at_ms: 1,
            expires_at_ms: 100,
            revoked_at_ms: None,
        }
    }

    #[tokio::test]
    async fn keys_are_stored_found_revoked_once_and_never_deleted() {
        let dir = std::env::temp_dir().join(format!("commons-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        let _ = std::fs::remove_file(&path);
        let ledger = Ledger::open(&format!("sqlite://{}", path.display())).unwrap();
        ledger.migrate().await.unwrap();
        ledger.add_api_key(&key("a")).await.unwrap();
        ledger.add_api_key(&key("b")).await.unwrap();
        assert!(ledger.add_api_key(&key("a")).await.is_err(), "ids are unique");
        assert_eq!(ledger.api_key("a").await.unwrap(), Some(key("a")));
        assert_eq!(ledger.api_keys().await.unwrap().len(), 2);
        assert!(ledger.revoke_api_key("a", 50, "pat").await.unwrap());
        assert!(!ledger.revoke_api_key("a", 60, "pat").await.unwrap(), "revoked once");
        assert!(!ledger.revoke_api_key("zzz", 60, "pat").await.unwrap());
        assert_eq!(ledger.api_key("a").await.unwrap().unwrap().revoked_at_ms, Some(50));
        let Ledger::Sqlite(pool) = &ledger else { unreachable!() };
        let refused =
            sqlx::query("UPDATE api_key SET revoked_at_ms = NULL WHERE id = 'a'").execute(pool).await;
        assert!(refused.unwrap_err().to_string().contains("only ever changes by being revoked"));
        let refused =
            sqlx::query("UPDATE api_key SET expires_at_ms = 999 WHERE id = 'b'").execute(pool).await;
        assert!(refused.is_err(), "an expiry is never extended");
        let refused = sqlx::query("DELETE FROM api_key WHERE id = 'b'").execute(pool).await;
        assert!(refused.unwrap_err().to_string().contains("kept"));
        ledger.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

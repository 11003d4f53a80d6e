//! The portal's sessions in the ledger's database (`commons_api::portal::session`): one row per
//! session or sign-in in progress, under the hash of the browser's cookie; expired rows are
//! deleted as new ones are written.

use commons_api::portal::session::SessionStore;
use futures::future::BoxFuture;

use super::{Ledger, Result, db};

const PUT_SQLITE: &str = "INSERT INTO portal_session (key_hash, expires_at_ms, body) VALUES ($1, $2, $3) \
    ON CONFLICT (key_hash) DO UPDATE SET expires_at_ms = excluded.expires_at_ms, body = excluded.body";
const UPDATE: &str = "UPDATE portal_session SET body = $3 WHERE key_hash = $1 AND expires_at_ms > $2";
const GET: &str = "SELECT body FROM portal_session WHERE key_hash = $1 AND expires_at_ms > $2";
const DELETE: &str = "DELETE FROM portal_session WHERE key_hash = $1 OR expires_at_ms <= $2";

impl Ledger {
    async fn put_session(&self, key_hash: &str, expires_at_ms: i64, body: &str) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(PUT_SQLITE)
                .bind(key_hash)
                .bind(expires_at_ms)
                .bind(body)
                .execute(pool)
                .await
                .map_err(db("keeping a portal session"))?;
        });
        Ok(())
    }

    async fn update_session(&self, key_hash: &str, now_ms: i64, body: &str) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(UPDATE)
                .bind(key_hash)
                .bind(now_ms)
                .bind(body)
                .execute(pool)
                .await
                .map_err(db("keeping a portal session"))?
                .rows_affected()
        });
        Ok(done == 1)
    }

    async fn get_session(&self, key_hash: &str, now_ms: i64) -> Result<Option<String>> {
        let found: Option<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as(GET)
                .bind(key_hash)
                .bind(now_ms)
                .fetch_optional(pool)
                .await
                .map_err(db("reading a portal session"))?
        });
        Ok(found.map(|(body,)| body))
    }

    async fn delete_session(&self, key_hash: &str, now_ms: i64) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(DELETE)
                .bind(key_hash)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(db("ending a portal session"))?;
        });
        Ok(())
    }
}

/// The portal's session store: the ledger.
#[derive(Debug, Clone)]
pub struct LedgerSessions(pub Ledger);

impl SessionStore for LedgerSessions {
    fn put(
        &self,
        key_hash: &str,
        expires_at_ms: i64,
        body: String,
    ) -> BoxFuture<'_, std::result::Result<(), String>> {
        let key_hash = key_hash.to_owned();
        Box::pin(async move {
            self.0.put_session(&key_hash, expires_at_ms, &body).await.map_err(|e| e.to_string())
        })
    }

    fn update(
        &self,
        key_hash: &str,
        now_ms: i64,
        body: String,
    ) -> BoxFuture<'_, std::result::Result<bool, String>> {
        let key_hash = key_hash.to_owned();
        Box::pin(
            async move { self.0.update_session(&key_hash, now_ms, &body).await.map_err(|e| e.to_string()) },
        )
    }

    fn get(&self, key_hash: &str, now_ms: i64) -> BoxFuture<'_, std::result::Result<Option<String>, String>> {
        let key_hash = key_hash.to_owned();
        Box::pin(async move { self.0.get_session(&key_hash, now_ms).await.map_err(|e| e.to_string()) })
    }

    fn delete(&self, key_hash: &str, now_ms: i64) -> BoxFuture<'_, std::result::Result<(), String>> {
        let key_hash = key_hash.to_owned();
        Box::pin(async move { self.0.delete_session(&key_hash, now_ms).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_kept_replaced_ended_and_expired() {
        let dir = std::env::temp_dir().join(format!("commons-sessions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        let _ = std::fs::remove_file(&path);
        let ledger = Ledger::open(&format!("sqlite://{}", path.display())).unwrap();
        ledger.migrate().await.unwrap();
        let store = LedgerSessions(ledger);
        store.put("k", 1_000, "one".into()).await.unwrap();
        store.put("k", 2_000, "two".into()).await.unwrap();
        assert_eq!(store.get("k", 1_500).await.unwrap().as_deref(), Some("two"));
        assert_eq!(store.get("k", 2_000).await.unwrap(), None, "expired");
        assert!(store.update("k", 1_500, "three".into()).await.unwrap());
        assert!(!store.update("k", 2_000, "late".into()).await.unwrap(), "expired: not kept");
        assert!(!store.update("none", 0, "x".into()).await.unwrap(), "never made: not made");
        store.put("old", 10, "x".into()).await.unwrap();
        store.delete("k", 100).await.unwrap();
        assert_eq!(store.get("k", 0).await.unwrap(), None);
        assert_eq!(store.get("old", 0).await.unwrap(), None, "swept with the delete");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

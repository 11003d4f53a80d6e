//! The REST API's audit record and idempotency keys in the ledger's database
//! (`commons_api::v1::record`): the record is append-only (the tables' triggers refuse changes);
//! a key is kept a day, and a key whose call never answered (the process stopped) is free again
//! after five minutes.

use commons_api::v1::record::{AuditRecord, CallStore, KeyState, StoredAnswer};
use futures::future::BoxFuture;

use super::{Ledger, Result, db};

/// The advisory lock that orders the audit record's commits in PostgreSQL ("commons-audit").
const AUDIT_ORDER_LOCK: i64 = 0x636f_6d6d_6f6e_7341;

/// Keys are kept this long.
const KEPT_MS: i64 = 24 * 3_600_000;
/// A call that has not answered in this long is taken to have died with its process.
const ABANDONED_MS: i64 = 5 * 60_000;

const AUDIT: &str = "INSERT INTO api_audit (at_ms, actor, credential, method, path, object, status, \
    idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const AUDIT_SINCE: &str = "SELECT id, at_ms, actor, credential, method, path, object, status, idempotency_key \
    FROM api_audit WHERE id > $1 ORDER BY id LIMIT $2";
const FORGET: &str =
    "DELETE FROM api_idempotency WHERE created_at_ms < $1 OR (status IS NULL AND created_at_ms < $2)";
const CLAIM: &str = "INSERT INTO api_idempotency (actor, key, fingerprint, created_at_ms) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (actor, key) DO NOTHING";
const KNOWN: &str = "SELECT fingerprint, status, content_type, location, body FROM api_idempotency WHERE actor = $1 AND key = $2";
const ANSWER: &str = "UPDATE api_idempotency SET status = $3, content_type = $4, location = $5, body = $6 \
    WHERE actor = $1 AND key = $2";
const RELEASE: &str = "DELETE FROM api_idempotency WHERE actor = $1 AND key = $2 AND status IS NULL";

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at_ms: i64,
    actor: String,
    credential: String,
    method: String,
    path: String,
    object: String,
    status: i32,
    idempotency_key: String,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    fingerprint: String,
    status: Option<i32>,
    content_type: Option<String>,
    location: Option<String>,
    body: Option<Vec<u8>>,
}

impl Ledger {
    async fn add_audit(&self, r: &AuditRecord) -> Result<()> {
        macro_rules! insert {
            () => {
                sqlx::query(AUDIT)
                    .bind(r.at_ms)
                    .bind(&r.actor)
                    .bind(&r.credential)
                    .bind(&r.method)
                    .bind(&r.path)
                    .bind(&r.object)
                    .bind(i32::from(r.status))
                    .bind(&r.idempotency_key)
            };
        }
        match self {
            // SQLite has one writer at a time: ids are committed in order.
            Ledger::Sqlite(pool) => {
                insert!().execute(pool).await.map_err(db("adding to the audit record"))?;
            }
            // Ids come from a sequence when the row is inserted, but transactions commit in any
            // order: a reader paging `after` an id could pass one committed later. Taking this
            // lock before the insert, to the commit, makes ids commit in order.
            Ledger::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(db("begin"))?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(AUDIT_ORDER_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("ordering the audit record"))?;
                insert!().execute(&mut *tx).await.map_err(db("adding to the audit record"))?;
                tx.commit().await.map_err(db("commit"))?;
            }
        }
        Ok(())
    }

    async fn read_audit(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows: Vec<AuditRow> = on_pool!(self, |pool| {
            sqlx::query_as(AUDIT_SINCE)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(db("reading the audit record"))?
        });
        Ok(rows
            .into_iter()
            .map(|r| AuditRecord {
                id: r.id,
                at_ms: r.at_ms,
                actor: r.actor,
                credential: r.credential,
                method: r.method,
                path: r.path,
                object: r.object,
                status: u16::try_from(r.status).unwrap_or(0),
                idempotency_key: r.idempotency_key,
            })
            .collect())
    }

    async fn claim(&self, actor: &str, key: &str, fingerprint: &str, now_ms: i64) -> Result<KeyState> {
        let claimed = on_pool!(self, |pool| {
            sqlx::query(FORGET)
                .bind(now_ms - KEPT_MS)
                .bind(now_ms - ABANDONED_MS)
                .execute(pool)
                .await
                .map_err(db("forgetting old idempotency keys"))?;
            sqlx::query(CLAIM)
                .bind(actor)
                .bind(key)
                .bind(fingerprint)
                .bind(now_ms)
                .execute(pool)
                .await
                .map_err(db("claiming an idempotency key"))?
                .rows_affected()
        });
        if claimed == 1 {
            return Ok(KeyState::New);
        }
        let row: Option<KeyRow> = on_pool!(self, |pool| {
            sqlx::query_as(KNOWN)
                .bind(actor)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(db("reading an idempotency key"))?
        });
        Ok(match row {
            // Forgotten between the two statements: claim it again next time.
            None => KeyState::Running,
            Some(r) if r.fingerprint != fingerprint => KeyState::Mismatch,
            Some(KeyRow { status: None, .. }) => KeyState::Running,
            Some(KeyRow { status: Some(status), content_type, location, body, .. }) => {
                KeyState::Answered(StoredAnswer {
                    status: u16::try_from(status).unwrap_or(200),
                    content_type: content_type.unwrap_or_default(),
                    location: location.unwrap_or_default(),
                    body: body.unwrap_or_default(),
                })
            }
        })
    }

    async fn keep_answer(&self, actor: &str, key: &str, a: &StoredAnswer) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(ANSWER)
                .bind(actor)
                .bind(key)
                .bind(i32::from(a.status))
                .bind(&a.content_type)
                .bind(&a.location)
                .bind(&a.body)
                .execute(pool)
                .await
                .map_err(db("keeping an answer for its idempotency key"))?;
        });
        Ok(())
    }

    async fn release_key(&self, actor: &str, key: &str) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(RELEASE)
                .bind(actor)
                .bind(key)
                .execute(pool)
                .await
                .map_err(db("releasing an idempotency key"))?;
        });
        Ok(())
    }
}

/// The API's call store: the ledger.
#[derive(Debug, Clone)]
pub struct LedgerCalls(pub Ledger);

impl CallStore for LedgerCalls {
    fn audit(&self, record: AuditRecord) -> BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async move { self.0.add_audit(&record).await.map_err(|e| e.to_string()) })
    }

    fn audit_since(
        &self,
        after_id: i64,
        limit: i64,
    ) -> BoxFuture<'_, std::result::Result<Vec<AuditRecord>, String>> {
        Box::pin(async move { self.0.read_audit(after_id, limit).await.map_err(|e| e.to_string()) })
    }

    fn begin(
        &self,
        actor: &str,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> BoxFuture<'_, std::result::Result<KeyState, String>> {
        let (actor, key, fingerprint) = (actor.to_owned(), key.to_owned(), fingerprint.to_owned());
        Box::pin(
            async move { self.0.claim(&actor, &key, &fingerprint, now_ms).await.map_err(|e| e.to_string()) },
        )
    }

    fn answer(
        &self,
        actor: &str,
        key: &str,
        answer: StoredAnswer,
    ) -> BoxFuture<'_, std::result::Result<(), String>> {
        let (actor, key) = (actor.to_owned(), key.to_owned());
        Box::pin(async move { self.0.keep_answer(&actor, &key, &answer).await.map_err(|e| e.to_string()) })
    }

    fn release(&self, actor: &str, key: &str) -> BoxFuture<'_, std::result::Result<(), String>> {
        let (actor, key) = (actor.to_owned(), key.to_owned());
        Box::pin(async move { self.0.release_key(&actor, &key).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> AuditRecord {
        AuditRecord {
            id: 0,
            at_ms: 5,
            actor: "oidc:pat".into(),
            credential: "token".into(),
            method: "POST".into(),
            path: path.into(),
            object: path.into(),
            status: 201,
            idempotency_key: String::new(),
        }
    }

    #[tokio::test]
    async fn keys_answer_once_and_the_record_only_grows() {
        let dir = std::env::temp_dir().join(format!("commons-calls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        let _ = std::fs::remove_file(&path);
        let ledger = Ledger::open(&format!("sqlite://{}", path.display())).unwrap();
        ledger.migrate().await.unwrap();
        let calls = LedgerCalls(ledger.clone());

        assert_eq!(calls.begin("a", "k1", "f1", 1_000).await.unwrap(), KeyState::New);
        assert_eq!(calls.begin("a", "k1", "f1", 1_001).await.unwrap(), KeyState::Running);
        assert_eq!(calls.begin("a", "k1", "f2", 1_001).await.unwrap(), KeyState::Mismatch);
        assert_eq!(calls.begin("b", "k1", "f2", 1_001).await.unwrap(), KeyState::New, "keys are per caller");
        let answer = StoredAnswer {
            status: 201,
            content_type: "application/json".into(),
            location: "/v1/x".into(),
            body: b"{}".to_vec(),
        };
        calls.answer("a", "k1", answer.clone()).await.unwrap();
        assert_eq!(calls.begin("a", "k1", "f1", 2_000).await.unwrap(), KeyState::Answered(answer));
        // A day later the key is forgotten.
        assert_eq!(calls.begin("a", "k1", "f1", 1_000 + KEPT_MS + 1).await.unwrap(), KeyState::New);
        // A call that never answered frees its key after five minutes; a released one at once.
        assert_eq!(calls.begin("a", "k2", "f", 0).await.unwrap(), KeyState::New);
        assert_eq!(calls.begin("a", "k2", "f", ABANDONED_MS + 1).await.unwrap(), KeyState::New);
        calls.release("a", "k2").await.unwrap();
        assert_eq!(calls.begin("a", "k2", "f", ABANDONED_MS + 2).await.unwrap(), KeyState::New);

        calls.audit(record("/v1/a")).await.unwrap();
        calls.audit(record("/v1/b")).await.unwrap();
        let all = calls.audit_since(0, 10).await.unwrap();
        assert_eq!(all.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/v1/a", "/v1/b"]);
        assert_eq!(calls.audit_since(all[0].id, 10).await.unwrap().len(), 1);
        let Ledger::Sqlite(pool) = &ledger else { unreachable!() };
        assert!(sqlx::query("DELETE FROM api_audit").execute(pool).await.is_err());
        assert!(sqlx::query("UPDATE api_audit SET status = 200").execute(pool).await.is_err());
        ledger.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

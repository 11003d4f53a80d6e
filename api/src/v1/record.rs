//! What the API keeps of the calls that change something: the audit record (who, what, when,
//! outcome) and each idempotency key's first outcome. Kept in the ledger's database by the
//! `commons` binary, behind [`CallStore`].

use futures::future::BoxFuture;
use serde::Serialize;

/// One call that changed (or tried to change) something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Its place in the record (ascending); 0 before it is stored.
    pub id: i64,
    /// When, milliseconds since the epoch.
    pub at_ms: i64,
    /// The Kubernetes user the caller was (`(unauthenticated)` when it was not).
    pub actor: String,
    /// `token` or `api-key:<id>`.
    pub credential: String,
    /// The HTTP method.
    pub method: String,
    /// The path called.
    pub path: String,
    /// The object made or changed, where the answer names one (its `Location`), else the path.
    pub object: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The Idempotency-Key sent, or empty.
    pub idempotency_key: String,
}

/// A call's answer, kept so that a retry with the same key gets it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The status.
    pub status: u16,
    /// Its Content-Type.
    pub content_type: String,
    /// Its Location, if any.
    pub location: String,
    /// Its body.
    pub body: Vec<u8>,
}

/// What is known of an idempotency key when a call with it begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Not seen (or expired): the call runs, and this call now holds the key.
    New,
    /// Seen with the same request, and answered: the answer is given again.
    Answered(StoredAnswer),
    /// Seen with the same request, still running.
    Running,
    /// Seen with a different request: a client bug, refused.
    Mismatch,
}

/// Where calls are recorded.
pub trait CallStore: Send + Sync + std::fmt::Debug {
    /// Appends to the audit record.
    fn audit(&self, record: AuditRecord) -> BoxFuture<'_, Result<(), String>>;
    /// The records after `after_id`, oldest first, at most `limit`.
    fn audit_since(&self, after_id: i64, limit: i64) -> BoxFuture<'_, Result<Vec<AuditRecord>, String>>;
    /// Claims (`actor`, `key`) for a request with `fingerprint`, or says what is known of it.
    /// Keys older than a day are forgotten.
    fn begin(
        &self,
        actor: &str,
        key: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> BoxFuture<'_, Result<KeyState, String>>;
    /// Keeps the answer of a call that claimed the key.
    fn answer(&self, actor: &str, key: &str, answer: StoredAnswer) -> BoxFuture<'_, Result<(), String>>;
    /// Lets a key go (the call failed in a way a retry may not: a 5xx).
    fn release(&self, actor: &str, key: &str) -> BoxFuture<'_, Result<(), String>>;
}

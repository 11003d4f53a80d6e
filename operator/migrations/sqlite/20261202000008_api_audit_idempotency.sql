-- The REST API's record of every call that changes something, and its idempotency keys (SQLite
-- flavour; the PostgreSQL flavour does the same). The audit record is append-only.
CREATE TABLE api_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    credential TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    object TEXT NOT NULL,
    status INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL
);
CREATE INDEX api_audit_at ON api_audit (at_ms);
CREATE TRIGGER api_audit_no_update BEFORE UPDATE ON api_audit
BEGIN SELECT RAISE(ABORT, 'the audit record is append-only'); END;
CREATE TRIGGER api_audit_no_delete BEFORE DELETE ON api_audit
BEGIN SELECT RAISE(ABORT, 'the audit record is append-only'); END;
-- A call's outcome kept under (actor, key) for a day: a retry gets the first outcome.
CREATE TABLE api_idempotency (
    actor TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    status INTEGER,
    content_type TEXT,
    location TEXT,
    body BLOB,
    PRIMARY KEY (actor, key)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created_at_ms);

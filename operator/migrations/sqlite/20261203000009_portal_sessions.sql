-- The portal's sessions and sign-ins in progress (SQLite flavour; the PostgreSQL flavour does the
-- same). Keyed by the SHA-256 of the browser's cookie value, never the value itself: reading this
-- table does not let anyone act as a signed-in person. Rows past their expiry are deleted.
CREATE TABLE portal_session (
    key_hash TEXT PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX portal_session_expires ON portal_session (expires_at_ms);

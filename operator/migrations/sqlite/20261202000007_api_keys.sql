-- API keys (SQLite flavour; the PostgreSQL flavour does the same): only each key's SHA-256 is
-- kept; a revoked key stays revoked, and nothing about a key but its revocation ever changes.
CREATE TABLE api_key (
    id TEXT PRIMARY KEY NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    organisation TEXT NOT NULL,
    role TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT,
    revoked_by TEXT
);
CREATE TRIGGER api_key_changes BEFORE UPDATE ON api_key
WHEN OLD.revoked_at_ms IS NOT NULL
  OR NEW.id IS NOT OLD.id OR NEW.hash IS NOT OLD.hash OR NEW.organisation IS NOT OLD.organisation
  OR NEW.role IS NOT OLD.role OR NEW.expires_at_ms IS NOT OLD.expires_at_ms
  OR NEW.created_at_ms IS NOT OLD.created_at_ms
BEGIN SELECT RAISE(ABORT, 'an API key only ever changes by being revoked, once'); END;
CREATE TRIGGER api_key_kept BEFORE DELETE ON api_key
BEGIN SELECT RAISE(ABORT, 'API keys are kept (revoke one instead)'); END;

-- API keys (PostgreSQL flavour; the SQLite flavour does the same): only each key's SHA-256 is
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
CREATE FUNCTION api_key_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'API keys are kept (revoke one instead)';
    END IF;
    IF OLD.revoked_at_ms IS NOT NULL
       OR NEW.id IS DISTINCT FROM OLD.id OR NEW.hash IS DISTINCT FROM OLD.hash
       OR NEW.organisation IS DISTINCT FROM OLD.organisation OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.expires_at_ms IS DISTINCT FROM OLD.expires_at_ms
       OR NEW.created_at_ms IS DISTINCT FROM OLD.created_at_ms THEN
        RAISE EXCEPTION 'an API key only ever changes by being revoked, once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER api_key_changes BEFORE UPDATE OR DELETE ON api_key
    FOR EACH ROW EXECUTE FUNCTION api_key_changes();
CREATE TRIGGER api_key_no_truncate BEFORE TRUNCATE ON api_key
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_never_truncated();

-- VAT, capacity and shares (PostgreSQL flavour; the SQLite flavour does the same).
-- A share of a shared HostedService's cost (kinds 'share' and 'provider-share') carries its weight
-- in the split; every other kind has weight 0.
ALTER TABLE allocation_interval ADD COLUMN share_weight BIGINT NOT NULL DEFAULT 0 CHECK (share_weight >= 0);
CREATE OR REPLACE FUNCTION allocation_interval_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'allocation intervals are never deleted (interval %)', OLD.interval_key;
    END IF;
    IF OLD.end_ms IS NOT NULL
       OR (NEW.interval_key, NEW.kind, NEW.object_uid, NEW.namespace, NEW.object_name, NEW.tenancy,
           NEW.organisation, NEW.organisation_name, NEW.sector, NEW.cost_centre, NEW.hosted_service,
           NEW.cpu_milli, NEW.memory_milli, NEW.storage_milli, NEW.load_balancer_milli, NEW.start_ms,
           NEW.recorded_ms, NEW.share_weight)
          IS DISTINCT FROM
          (OLD.interval_key, OLD.kind, OLD.object_uid, OLD.namespace, OLD.object_name, OLD.tenancy,
           OLD.organisation, OLD.organisation_name, OLD.sector, OLD.cost_centre, OLD.hosted_service,
           OLD.cpu_milli, OLD.memory_milli, OLD.storage_milli, OLD.load_balancer_milli, OLD.start_ms,
           OLD.recorded_ms, OLD.share_weight) THEN
        RAISE EXCEPTION 'allocation intervals are immutable once written; only an open interval''s end may be set (interval %)', OLD.interval_key;
    END IF;
    RETURN NEW;
END;
$$;

-- The VAT rates a period was closed with, exactly as they were.
CREATE TABLE period_vat_rate (
    period            TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    effective_from_ms BIGINT  NOT NULL,
    percent           TEXT    NOT NULL,
    PRIMARY KEY (period, name)
);
CREATE TRIGGER period_vat_rate_immutable BEFORE UPDATE OR DELETE ON period_vat_rate
    FOR EACH ROW EXECUTE FUNCTION closed_period_never_changes();
CREATE TRIGGER period_vat_rate_closed BEFORE INSERT ON period_vat_rate
    FOR EACH ROW EXECUTE FUNCTION closed_period_no_additions();
CREATE TRIGGER period_vat_rate_no_truncate BEFORE TRUNCATE ON period_vat_rate
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_never_truncated();

-- VAT, capacity and shares (SQLite flavour; the PostgreSQL flavour does the same).
-- A share of a shared HostedService's cost (kinds 'share' and 'provider-share') carries its weight
-- in the split; every other kind has weight 0.
ALTER TABLE allocation_interval ADD COLUMN share_weight INTEGER NOT NULL DEFAULT 0 CHECK (share_weight >= 0);
DROP TRIGGER allocation_interval_immutable;
CREATE TRIGGER allocation_interval_immutable BEFORE UPDATE ON allocation_interval
WHEN OLD.end_ms IS NOT NULL
  OR NEW.interval_key IS NOT OLD.interval_key OR NEW.kind IS NOT OLD.kind
  OR NEW.object_uid IS NOT OLD.object_uid OR NEW.namespace IS NOT OLD.namespace
  OR NEW.object_name IS NOT OLD.object_name OR NEW.tenancy IS NOT OLD.tenancy
  OR NEW.organisation IS NOT OLD.organisation OR NEW.organisation_name IS NOT OLD.organisation_name
  OR NEW.sector IS NOT OLD.sector OR NEW.cost_centre IS NOT OLD.cost_centre
  OR NEW.hosted_service IS NOT OLD.hosted_service OR NEW.cpu_milli IS NOT OLD.cpu_milli
  OR NEW.memory_milli IS NOT OLD.memory_milli OR NEW.storage_milli IS NOT OLD.storage_milli
  OR NEW.load_balancer_milli IS NOT OLD.load_balancer_milli OR NEW.start_ms IS NOT OLD.start_ms
  OR NEW.recorded_ms IS NOT OLD.recorded_ms OR NEW.share_weight IS NOT OLD.share_weight
BEGIN
    SELECT RAISE(ABORT, 'allocation intervals are immutable once written; only an open interval''s end may be set');
END;

-- The VAT rates a period was closed with, exactly as they were.
CREATE TABLE period_vat_rate (
    period            TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    effective_from_ms INTEGER NOT NULL,
    percent           TEXT    NOT NULL,
    PRIMARY KEY (period, name)
) STRICT;
CREATE TRIGGER period_vat_rate_immutable BEFORE UPDATE ON period_vat_rate
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER period_vat_rate_never_deleted BEFORE DELETE ON period_vat_rate
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER period_vat_rate_closed BEFORE INSERT ON period_vat_rate
WHEN EXISTS (SELECT 1 FROM closed_period WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;

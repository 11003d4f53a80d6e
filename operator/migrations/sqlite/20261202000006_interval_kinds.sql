-- The kinds of interval the meter records: nodes (what capacity was offered) and shares of shared
-- services join pods, claims and load balancers. SQLite flavour: a CHECK constraint cannot be
-- altered, so the table is rebuilt with every row as it was (ids included), in this migration's
-- transaction, and its indexes and guards are made again.
CREATE TABLE allocation_interval_next (
    id                INTEGER PRIMARY KEY,
    interval_key      TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL CHECK (kind IN ('pod', 'claim', 'load-balancer', 'node', 'share', 'provider-share')),
    object_uid        TEXT    NOT NULL,
    namespace         TEXT    NOT NULL,
    object_name       TEXT    NOT NULL,
    tenancy           TEXT    NOT NULL,
    organisation      TEXT    NOT NULL,
    organisation_name TEXT    NOT NULL,
    sector            TEXT    NOT NULL,
    cost_centre       TEXT    NOT NULL,
    hosted_service    TEXT    NOT NULL,
    cpu_milli         INTEGER NOT NULL CHECK (cpu_milli >= 0),
    memory_milli      INTEGER NOT NULL CHECK (memory_milli >= 0),
    storage_milli     INTEGER NOT NULL CHECK (storage_milli >= 0),
    load_balancer_milli INTEGER NOT NULL CHECK (load_balancer_milli >= 0),
    start_ms          INTEGER NOT NULL,
    end_ms            INTEGER CHECK (end_ms IS NULL OR end_ms >= start_ms),
    end_estimated     INTEGER NOT NULL DEFAULT 0 CHECK (end_estimated IN (0, 1)),
    recorded_ms       INTEGER NOT NULL,
    end_recorded_ms   INTEGER,
    share_weight      INTEGER NOT NULL DEFAULT 0 CHECK (share_weight >= 0)
) STRICT;
INSERT INTO allocation_interval_next (id, interval_key, kind, object_uid, namespace, object_name,
    tenancy, organisation, organisation_name, sector, cost_centre, hosted_service, cpu_milli,
    memory_milli, storage_milli, load_balancer_milli, start_ms, end_ms, end_estimated, recorded_ms,
    end_recorded_ms, share_weight)
SELECT id, interval_key, kind, object_uid, namespace, object_name, tenancy, organisation,
    organisation_name, sector, cost_centre, hosted_service, cpu_milli, memory_milli, storage_milli,
    load_balancer_milli, start_ms, end_ms, end_estimated, recorded_ms, end_recorded_ms, share_weight
FROM allocation_interval;
-- Dropping a table fires no row triggers; its own triggers and indexes go with it.
DROP TABLE allocation_interval;
ALTER TABLE allocation_interval_next RENAME TO allocation_interval;
CREATE INDEX allocation_interval_open ON allocation_interval (end_ms) WHERE end_ms IS NULL;
CREATE INDEX allocation_interval_span ON allocation_interval (start_ms, end_ms);
CREATE INDEX allocation_interval_object ON allocation_interval (object_uid);
CREATE UNIQUE INDEX allocation_interval_one_open ON allocation_interval (kind, object_uid) WHERE end_ms IS NULL;
CREATE INDEX allocation_interval_end ON allocation_interval (end_ms);
CREATE TRIGGER allocation_interval_never_deleted BEFORE DELETE ON allocation_interval
BEGIN
    SELECT RAISE(ABORT, 'allocation intervals are never deleted');
END;
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

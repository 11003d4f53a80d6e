-- The raw record of allocation (docs/metering.md, "The ledger"). SQLite flavour: STRICT, so an
-- integer column never silently holds a float or text. The PostgreSQL flavour has the same
-- tables, columns and meanings.

-- What the meter knows about itself: when metering began (nothing before it is billed) and the
-- last instant the ledger held everything the meter had seen (`seen_through_ms`).
CREATE TABLE meter_state (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

-- One row per span during which an object held a fixed allocation. A row is written when the span
-- opens; its end is written once, when it closes; nothing in a row changes after that.
-- Quantities are in milli-units (CPU millicores, memory and storage milli-bytes, load balancers
-- thousandths), as Kubernetes counts them; instants are Unix milliseconds, UTC.
CREATE TABLE allocation_interval (
    id                INTEGER PRIMARY KEY,
    interval_key      TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL CHECK (kind IN ('pod', 'claim', 'load-balancer')),
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
    recorded_ms       INTEGER NOT NULL
) STRICT;
CREATE INDEX allocation_interval_open ON allocation_interval (end_ms) WHERE end_ms IS NULL;
CREATE INDEX allocation_interval_span ON allocation_interval (start_ms, end_ms);
CREATE INDEX allocation_interval_object ON allocation_interval (object_uid);

-- The raw record is kept immutably: a row is never deleted, and of an open row only its end may be
-- written, once.
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
  OR NEW.recorded_ms IS NOT OLD.recorded_ms
BEGIN
    SELECT RAISE(ABORT, 'allocation intervals are immutable once written; only an open interval''s end may be set');
END;

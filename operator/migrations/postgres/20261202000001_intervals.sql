-- The raw record of allocation (docs/metering.md, "The ledger"). PostgreSQL flavour: the same
-- tables, columns and meanings as the SQLite flavour, with BIGINT where SQLite says INTEGER.

-- What the meter knows about itself: when metering began (nothing before it is billed) and the
-- last instant the ledger held everything the meter had seen (`seen_through_ms`).
CREATE TABLE meter_state (
    name  TEXT    NOT NULL PRIMARY KEY,
    value BIGINT  NOT NULL
);

-- One row per span during which an object held a fixed allocation. A row is written when the span
-- opens; its end is written once, when it closes; nothing in a row changes after that.
-- Quantities are in milli-units (CPU millicores, memory and storage milli-bytes, load balancers
-- thousandths), as Kubernetes counts them; instants are Unix milliseconds, UTC.
CREATE TABLE allocation_interval (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    cpu_milli         BIGINT  NOT NULL CHECK (cpu_milli >= 0),
    memory_milli      BIGINT  NOT NULL CHECK (memory_milli >= 0),
    storage_milli     BIGINT  NOT NULL CHECK (storage_milli >= 0),
    load_balancer_milli BIGINT  NOT NULL CHECK (load_balancer_milli >= 0),
    start_ms          BIGINT  NOT NULL,
    end_ms            BIGINT  CHECK (end_ms IS NULL OR end_ms >= start_ms),
    end_estimated     BIGINT  NOT NULL DEFAULT 0 CHECK (end_estimated IN (0, 1)),
    recorded_ms       BIGINT  NOT NULL
);
CREATE INDEX allocation_interval_open ON allocation_interval (end_ms) WHERE end_ms IS NULL;
CREATE INDEX allocation_interval_span ON allocation_interval (start_ms, end_ms);
CREATE INDEX allocation_interval_object ON allocation_interval (object_uid);

-- The raw record is kept immutably: a row is never deleted, and of an open row only its end may be
-- written, once.
CREATE FUNCTION allocation_interval_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'allocation intervals are never deleted (interval %)', OLD.interval_key;
    END IF;
    IF OLD.end_ms IS NOT NULL
       OR (NEW.interval_key, NEW.kind, NEW.object_uid, NEW.namespace, NEW.object_name, NEW.tenancy,
           NEW.organisation, NEW.organisation_name, NEW.sector, NEW.cost_centre, NEW.hosted_service,
           NEW.cpu_milli, NEW.memory_milli, NEW.storage_milli, NEW.load_balancer_milli, NEW.start_ms,
           NEW.recorded_ms)
          IS DISTINCT FROM
          (OLD.interval_key, OLD.kind, OLD.object_uid, OLD.namespace, OLD.object_name, OLD.tenancy,
           OLD.organisation, OLD.organisation_name, OLD.sector, OLD.cost_centre, OLD.hosted_service,
           OLD.cpu_milli, OLD.memory_milli, OLD.storage_milli, OLD.load_balancer_milli, OLD.start_ms,
           OLD.recorded_ms) THEN
        RAISE EXCEPTION 'allocation intervals are immutable once written; only an open interval''s end may be set (interval %)', OLD.interval_key;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER allocation_interval_immutable BEFORE UPDATE OR DELETE ON allocation_interval
    FOR EACH ROW EXECUTE FUNCTION allocation_interval_immutable();

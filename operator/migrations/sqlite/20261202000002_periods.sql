-- Closed periods (docs/metering.md, "Periods"). SQLite flavour; the PostgreSQL flavour has the
-- same tables, columns and meanings.

-- When each interval's end was written, so a period can be rated exactly as it was known when it
-- closed.
ALTER TABLE allocation_interval ADD COLUMN end_recorded_ms INTEGER;
-- Ends written before this column existed count as written when their interval was (the
-- earliest it can have been); the immutability trigger is lifted for this one statement only.
DROP TRIGGER allocation_interval_immutable;
UPDATE allocation_interval SET end_recorded_ms = recorded_ms WHERE end_ms IS NOT NULL;
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


-- A calendar month (UTC) once closed: its lines never change after.
CREATE TABLE closed_period (
    period     TEXT    NOT NULL PRIMARY KEY,
    from_ms    INTEGER NOT NULL,
    until_ms   INTEGER NOT NULL,
    closed_ms  INTEGER NOT NULL,
    currency   TEXT    NOT NULL,
    lines      INTEGER NOT NULL,
    total_nanos INTEGER NOT NULL
) STRICT;

-- The rate cards a period was closed with, exactly as they were.
CREATE TABLE period_rate_card (
    period            TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    effective_from_ms INTEGER NOT NULL,
    currency          TEXT    NOT NULL,
    cpu               TEXT    NOT NULL,
    memory            TEXT    NOT NULL,
    storage           TEXT    NOT NULL,
    load_balancer     TEXT    NOT NULL,
    overhead_percent  TEXT    NOT NULL,
    PRIMARY KEY (period, name)
) STRICT;

-- A closed period's charge lines, each rounded once; `corrects` names the earlier closed period a
-- correction line is for ('' for the period's own charges). Quantities are exact decimals (text),
-- amounts are in units of 10^-9 of the currency.
CREATE TABLE charge_line (
    period            TEXT    NOT NULL,
    line_no           INTEGER NOT NULL,
    corrects          TEXT    NOT NULL,
    tenancy           TEXT    NOT NULL,
    namespace         TEXT    NOT NULL,
    hosted_service    TEXT    NOT NULL,
    organisation      TEXT    NOT NULL,
    organisation_name TEXT    NOT NULL,
    sector            TEXT    NOT NULL,
    cost_centre       TEXT    NOT NULL,
    charge            TEXT    NOT NULL,
    quantity          TEXT    NOT NULL,
    amount_nanos      INTEGER NOT NULL,
    PRIMARY KEY (period, line_no)
) STRICT;

CREATE TRIGGER closed_period_immutable BEFORE UPDATE ON closed_period
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER closed_period_never_deleted BEFORE DELETE ON closed_period
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER period_rate_card_immutable BEFORE UPDATE ON period_rate_card
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER period_rate_card_never_deleted BEFORE DELETE ON period_rate_card
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER charge_line_immutable BEFORE UPDATE ON charge_line
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER charge_line_never_deleted BEFORE DELETE ON charge_line
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;

-- Closed periods (docs/metering.md, "Periods"). PostgreSQL flavour: the same tables, columns and
-- meanings as the SQLite flavour, with BIGINT where SQLite says INTEGER.

ALTER TABLE allocation_interval ADD COLUMN end_recorded_ms BIGINT;
-- Ends written before this column existed count as written when their interval was (the
-- earliest it can have been); the immutability trigger is lifted for this one statement only.
ALTER TABLE allocation_interval DISABLE TRIGGER allocation_interval_immutable;
UPDATE allocation_interval SET end_recorded_ms = recorded_ms WHERE end_ms IS NOT NULL;
ALTER TABLE allocation_interval ENABLE TRIGGER allocation_interval_immutable;

CREATE TABLE closed_period (
    period      TEXT    NOT NULL PRIMARY KEY,
    from_ms     BIGINT  NOT NULL,
    until_ms    BIGINT  NOT NULL,
    closed_ms   BIGINT  NOT NULL,
    currency    TEXT    NOT NULL,
    lines       BIGINT  NOT NULL,
    total_nanos BIGINT  NOT NULL
);

CREATE TABLE period_rate_card (
    period            TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    effective_from_ms BIGINT  NOT NULL,
    currency          TEXT    NOT NULL,
    cpu               TEXT    NOT NULL,
    memory            TEXT    NOT NULL,
    storage           TEXT    NOT NULL,
    load_balancer     TEXT    NOT NULL,
    overhead_percent  TEXT    NOT NULL,
    PRIMARY KEY (period, name)
);

CREATE TABLE charge_line (
    period            TEXT    NOT NULL,
    line_no           BIGINT  NOT NULL,
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
    amount_nanos      BIGINT  NOT NULL,
    PRIMARY KEY (period, line_no)
);

CREATE FUNCTION closed_period_never_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a closed period never changes (%)', OLD.period;
END;
$$;
CREATE TRIGGER closed_period_immutable BEFORE UPDATE OR DELETE ON closed_period
    FOR EACH ROW EXECUTE FUNCTION closed_period_never_changes();
CREATE TRIGGER period_rate_card_immutable BEFORE UPDATE OR DELETE ON period_rate_card
    FOR EACH ROW EXECUTE FUNCTION closed_period_never_changes();
CREATE TRIGGER charge_line_immutable BEFORE UPDATE OR DELETE ON charge_line
    FOR EACH ROW EXECUTE FUNCTION closed_period_never_changes();

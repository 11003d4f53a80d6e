-- Guards (PostgreSQL flavour; the SQLite flavour does the same):
-- one open interval per object at most (a second meter's duplicate is dropped, not recorded);
-- nothing added to a month once it is closed (its closed_period row is written last), and no
-- TRUNCATE of the record; indexes for the queries periods and corrections make.
CREATE UNIQUE INDEX allocation_interval_one_open ON allocation_interval (kind, object_uid) WHERE end_ms IS NULL;
CREATE INDEX allocation_interval_end ON allocation_interval (end_ms);
CREATE INDEX charge_line_corrects ON charge_line (corrects, period);
CREATE FUNCTION closed_period_no_additions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM closed_period WHERE period = NEW.period) THEN
        RAISE EXCEPTION 'a closed period never changes (%)', NEW.period;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER charge_line_closed BEFORE INSERT ON charge_line
    FOR EACH ROW EXECUTE FUNCTION closed_period_no_additions();
CREATE TRIGGER period_rate_card_closed BEFORE INSERT ON period_rate_card
    FOR EACH ROW EXECUTE FUNCTION closed_period_no_additions();
CREATE FUNCTION ledger_never_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is never truncated (%)', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER allocation_interval_no_truncate BEFORE TRUNCATE ON allocation_interval
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_never_truncated();
CREATE TRIGGER charge_line_no_truncate BEFORE TRUNCATE ON charge_line
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_never_truncated();
CREATE TRIGGER closed_period_no_truncate BEFORE TRUNCATE ON closed_period
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_never_truncated();

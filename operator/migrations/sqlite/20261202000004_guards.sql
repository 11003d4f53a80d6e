-- Guards (SQLite flavour; the PostgreSQL flavour does the same):
-- one open interval per object at most (a second meter's duplicate is dropped, not recorded);
-- nothing added to a month once it is closed (its closed_period row is written last);
-- indexes for the queries periods and corrections make.
CREATE UNIQUE INDEX allocation_interval_one_open ON allocation_interval (kind, object_uid) WHERE end_ms IS NULL;
CREATE INDEX allocation_interval_end ON allocation_interval (end_ms);
CREATE INDEX charge_line_corrects ON charge_line (corrects, period);
CREATE TRIGGER charge_line_closed BEFORE INSERT ON charge_line
WHEN EXISTS (SELECT 1 FROM closed_period WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER period_rate_card_closed BEFORE INSERT ON period_rate_card
WHEN EXISTS (SELECT 1 FROM closed_period WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;

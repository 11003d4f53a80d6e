-- Each charge line is priced by one rate card (a price change within a month makes a line for each
-- card), named here, so every line has one unit price (FOCUS ListUnitPrice). PostgreSQL flavour.
ALTER TABLE charge_line ADD COLUMN rate_card TEXT NOT NULL DEFAULT '';

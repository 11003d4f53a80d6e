-- The kinds of interval the meter records: nodes (what capacity was offered) and shares of shared
-- services join pods, claims and load balancers. PostgreSQL flavour.
ALTER TABLE allocation_interval
    DROP CONSTRAINT allocation_interval_kind_check,
    ADD CONSTRAINT allocation_interval_kind_check
        CHECK (kind IN ('pod', 'claim', 'load-balancer', 'node', 'share', 'provider-share'));

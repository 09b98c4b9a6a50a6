-- Paper trading switched on or off per strategy by hand (the dashboard's control), appended, never
-- updated: the newest row of a strategy overrides `strategies.paper` of the configuration, and the
-- rows are the audit log of who switched what when.
CREATE TABLE IF NOT EXISTS paper.switches (
    strategy    VARCHAR     NOT NULL,
    enabled     BOOLEAN     NOT NULL,
    changed_by  VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    reason      VARCHAR,
    PRIMARY KEY (strategy, ts)
);

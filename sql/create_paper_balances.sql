-- Latest balances per asset as the broker reports them.
CREATE TABLE IF NOT EXISTS paper.balances (
    broker  VARCHAR     NOT NULL,
    asset   VARCHAR     NOT NULL,
    free    DOUBLE      NOT NULL,
    used    DOUBLE      NOT NULL,  -- locked in open orders
    total   DOUBLE      NOT NULL,
    ts      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (broker, asset)
);

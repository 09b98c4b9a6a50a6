-- Transaction-cost analysis per parent order (signs: positive = cost to us).
CREATE TABLE IF NOT EXISTS paper.tca (
    parent_id                VARCHAR     PRIMARY KEY,
    strategy                 VARCHAR     NOT NULL,
    symbol                   VARCHAR     NOT NULL,
    side                     VARCHAR     NOT NULL,
    algo                     VARCHAR     NOT NULL,
    parent_qty               DOUBLE      NOT NULL,
    filled_qty               DOUBLE      NOT NULL,
    n_children               INTEGER     NOT NULL,
    n_fills                  INTEGER     NOT NULL,
    arrival_price            DOUBLE      NOT NULL,
    avg_fill_price           DOUBLE,
    interval_vwap            DOUBLE,
    implementation_shortfall_bps DOUBLE,
    slippage_vs_vwap_bps     DOUBLE,
    fees                     DOUBLE      NOT NULL,
    shortfall_cost           DOUBLE,      -- quote units: side * (avg - arrival) * filled + fees
    ts_start                 TIMESTAMPTZ NOT NULL,
    ts_end                   TIMESTAMPTZ NOT NULL
);

-- Backtest-paper drift: each paper fill next to the fill the backtest makes for the same
-- decision (the open of the candle after the signal candle). `status` is 'ok', 'diverged'
-- (|drift_bps| above the tolerance) or 'pending' (that candle has not closed yet).
CREATE TABLE IF NOT EXISTS paper.drift (
    broker          VARCHAR     NOT NULL,
    client_order_id VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    side            VARCHAR     NOT NULL,
    decision_ts     TIMESTAMPTZ NOT NULL,
    paper_price     DOUBLE      NOT NULL,
    backtest_price  DOUBLE,
    drift_bps       DOUBLE,
    tolerance_bps   DOUBLE      NOT NULL,
    status          VARCHAR     NOT NULL,
    PRIMARY KEY (broker, client_order_id)
);

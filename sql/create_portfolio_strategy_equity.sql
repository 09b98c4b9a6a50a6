-- Each strategy's virtual sub-ledger (its capital share, cash and units) at each candle close;
-- the strategies' equities add up to portfolio.equity.
CREATE TABLE IF NOT EXISTS portfolio.strategy_equity (
    portfolio  VARCHAR     NOT NULL,
    strategy   VARCHAR     NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,
    equity     DOUBLE      NOT NULL,
    PRIMARY KEY (portfolio, strategy, ts)
);

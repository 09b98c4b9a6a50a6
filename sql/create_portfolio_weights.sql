-- Target weights of each strategy of a portfolio (fractions of that strategy's sub-ledger), decided
-- at candle ts's close: the strategy's signal target x the allocation's weight of the market.
-- A row only where a target changes: every row is a decision to trade.
CREATE TABLE IF NOT EXISTS portfolio.weights (
    portfolio  VARCHAR     NOT NULL,
    strategy   VARCHAR     NOT NULL,   -- the parameter set key
    ts         TIMESTAMPTZ NOT NULL,
    symbol     VARCHAR     NOT NULL,
    weight     DOUBLE      NOT NULL,
    PRIMARY KEY (portfolio, strategy, ts, symbol)
);

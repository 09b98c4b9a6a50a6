-- The portfolio backtest's fills (net of the strategies' internal crosses), at the open.
CREATE TABLE IF NOT EXISTS portfolio.trades (
    portfolio  VARCHAR     NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,
    symbol     VARCHAR     NOT NULL,
    qty        DOUBLE      NOT NULL,   -- signed: + buy, - sell
    price      DOUBLE      NOT NULL,   -- slipped
    fee        DOUBLE      NOT NULL,
    notional   DOUBLE      NOT NULL,
    PRIMARY KEY (portfolio, ts, symbol)
);

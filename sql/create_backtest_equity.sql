-- The equity curve of a backtest, one row per candle.
CREATE TABLE IF NOT EXISTS backtest.equity (
    strategy    VARCHAR     NOT NULL,
    params_hash VARCHAR     NOT NULL,
    exchange    VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    equity      DOUBLE      NOT NULL,
    cash        DOUBLE      NOT NULL,
    position    DOUBLE      NOT NULL,
    drawdown    DOUBLE      NOT NULL,
    PRIMARY KEY (strategy, params_hash, exchange, symbol, timeframe, ts)
);

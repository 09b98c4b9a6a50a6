-- Signals of one parameter set on one market, computed on closed candles only: a signal on
-- candle `ts` acts at the next candle's open. `target` is a position fraction in [-1, 1].
CREATE TABLE IF NOT EXISTS signals.signals (
    strategy    VARCHAR     NOT NULL,
    params_hash VARCHAR     NOT NULL,
    exchange    VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    entry       BOOLEAN     NOT NULL,
    exit        BOOLEAN     NOT NULL,
    short_entry BOOLEAN,
    short_exit  BOOLEAN,
    target      DOUBLE,
    PRIMARY KEY (strategy, params_hash, exchange, symbol, timeframe, ts)
);

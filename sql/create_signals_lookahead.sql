-- The look-ahead check of each parameter set, run by the signals stage before any backtest.
-- A parameter set whose last check failed has no signals and is never backtested or traded.
CREATE TABLE IF NOT EXISTS signals.lookahead (
    param_set   VARCHAR     NOT NULL PRIMARY KEY,  -- the partition key
    strategy    VARCHAR     NOT NULL,
    params_hash VARCHAR     NOT NULL,
    code_hash   VARCHAR     NOT NULL,              -- SHA-256 of the strategy's source: re-checked when it changes
    checked_at  TIMESTAMPTZ NOT NULL,
    market      VARCHAR     NOT NULL,              -- "SYMBOL:TF" of the candles checked
    n_candles   INTEGER     NOT NULL,
    ok          BOOLEAN     NOT NULL,
    column_name VARCHAR,                           -- the first column that changed (NULL when ok)
    candle_ts   TIMESTAMPTZ,                       -- the candle where it changed
    detail      VARCHAR                            -- the check's summary
);

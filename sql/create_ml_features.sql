-- Model features per candle (quantdag.ml.features): causal, finite-window, NULL while warming up.
-- The feature columns depend on the configuration (ml.features); the ML stage adds each one (DOUBLE)
-- in the transaction of its first write, as the indicators stage does.
CREATE TABLE IF NOT EXISTS ml.features (
    exchange    VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts)
);

-- A registered model version's P(up) per candle (quantdag.ml): the champion's, written after each training.
-- oos = true: a walk-forward out-of-sample prediction of that training (no label overlapping the candle was
-- learned from); false: the final model's prediction (in sample on the candles it was trained on).
CREATE TABLE IF NOT EXISTS ml.predictions (
    exchange    VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    model       VARCHAR     NOT NULL,
    version     INTEGER     NOT NULL,
    p_up        DOUBLE,
    oos         BOOLEAN     NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts, model, version, oos)
);

-- Supervised labels (quantdag.ml.labels): the outcome after candle ts, and known_at, the close of the
-- candle that settled it (purging trains only on labels known before a test block starts).
CREATE TABLE IF NOT EXISTS ml.labels (
    exchange    VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    kind        VARCHAR     NOT NULL,   -- fixed | triple_barrier | meta
    y           TINYINT     NOT NULL,   -- 1: up (upper barrier first / return above threshold), else 0
    ret         DOUBLE,                 -- the log return the label stands for
    known_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts, kind)
);

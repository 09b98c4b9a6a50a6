-- Technical indicators per candle (TA-Lib); NULL while an indicator is still warming up.
-- These are the shipped columns (quantdag.yaml: indicators); a configured extra column is added by the
-- indicators stage (ALTER TABLE ... ADD COLUMN, DOUBLE) in the transaction of its first write.
CREATE TABLE IF NOT EXISTS features.indicators (
    exchange    VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    sma_20      DOUBLE,
    sma_50      DOUBLE,
    ema_12      DOUBLE,
    ema_26      DOUBLE,
    rsi_14      DOUBLE,
    macd        DOUBLE,
    macd_signal DOUBLE,
    macd_hist   DOUBLE,
    bb_upper    DOUBLE,
    bb_middle   DOUBLE,
    bb_lower    DOUBLE,
    atr_14      DOUBLE,
    adx_14      DOUBLE,
    PRIMARY KEY (exchange, symbol, timeframe, ts)
);

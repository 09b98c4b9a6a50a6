-- Clean candles: closed, deduplicated, OHLC-valid, on the timeframe's grid; a gap is filled
-- with a flat zero-volume candle at the previous close (`filled`) and recorded in market.gaps.
-- `ts` is the candle's OPEN time in UTC.
CREATE TABLE IF NOT EXISTS market.candles (
    exchange  VARCHAR     NOT NULL,
    symbol    VARCHAR     NOT NULL,
    timeframe VARCHAR     NOT NULL,
    ts        TIMESTAMPTZ NOT NULL,
    open      DOUBLE      NOT NULL,
    high      DOUBLE      NOT NULL,
    low       DOUBLE      NOT NULL,
    close     DOUBLE      NOT NULL,
    volume    DOUBLE      NOT NULL,
    filled    BOOLEAN     NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts)
);

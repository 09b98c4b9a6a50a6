-- Candles exactly as fetched, with the time of the fetch: duplicates, disorder and the
-- still-open candle included. `ts` is the exchange's open time in ms since the epoch (UTC).
CREATE TABLE IF NOT EXISTS raw.candles (
    exchange   VARCHAR     NOT NULL,
    symbol     VARCHAR     NOT NULL,
    timeframe  VARCHAR     NOT NULL,
    ts         BIGINT      NOT NULL,
    open       DOUBLE      NOT NULL,
    high       DOUBLE      NOT NULL,
    low        DOUBLE      NOT NULL,
    close      DOUBLE      NOT NULL,
    volume     DOUBLE      NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL
);

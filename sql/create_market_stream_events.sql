-- What a stream session met: minutes/trades neither streamed nor on REST (gap), reconnects (silence,
-- disconnect, recycle), order-book resnapshots after a sequence gap, messages dropped as duplicate or
-- out of order. Never a synthetic candle: a gap stays a gap here and in market.candles.
CREATE TABLE IF NOT EXISTS market.stream_events (
    exchange  VARCHAR     NOT NULL,
    symbol    VARCHAR     NOT NULL,
    channel   VARCHAR     NOT NULL,   -- ohlcv | trades | book
    kind      VARCHAR     NOT NULL,   -- gap | reconnect | resnapshot | dropped
    first_ts  TIMESTAMPTZ,            -- gap: the first missing candle open / trade time
    last_ts   TIMESTAMPTZ,
    count     BIGINT      NOT NULL,   -- candles or trades missing, messages dropped, 1 otherwise
    detail    VARCHAR,                -- e.g. the reconnect's reason
    session   VARCHAR     NOT NULL,
    seen_at   TIMESTAMPTZ NOT NULL    -- when the streamer saw it
);

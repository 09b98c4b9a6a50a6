-- Lineage of streamed candles: which stream session (or REST backfill after a reconnect) delivered
-- each closed candle that the landing area put into market.candles, and when.
CREATE TABLE IF NOT EXISTS market.stream_candles (
    exchange     VARCHAR     NOT NULL,
    symbol       VARCHAR     NOT NULL,
    timeframe    VARCHAR     NOT NULL,
    ts           TIMESTAMPTZ NOT NULL,
    session      VARCHAR     NOT NULL,   -- the streamer run (quantdag.stream) that received it
    source       VARCHAR     NOT NULL,   -- stream | backfill
    received_at  TIMESTAMPTZ NOT NULL,
    ingested_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts)
);

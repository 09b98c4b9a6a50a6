-- Trades streamed by quantdag.stream (ccxt.pro watch_trades), and the ones fetched over REST after a
-- reconnect or an id gap. One row per venue trade id; no primary key (its index would grow with every
-- trade stored): the landing ingest inserts only ids it does not have yet (quantdag/stream/landing.py).
CREATE TABLE IF NOT EXISTS market.trades (
    exchange     VARCHAR     NOT NULL,
    symbol       VARCHAR     NOT NULL,
    id           BIGINT      NOT NULL,   -- the venue's trade id
    ts           TIMESTAMPTZ NOT NULL,   -- the trade's time on the venue
    price        DOUBLE      NOT NULL,
    amount       DOUBLE      NOT NULL,   -- base units
    side         VARCHAR,                -- the taker's side: buy | sell
    session      VARCHAR     NOT NULL,   -- the streamer run that received it
    source       VARCHAR     NOT NULL,   -- stream | backfill
    received_at  TIMESTAMPTZ NOT NULL
);

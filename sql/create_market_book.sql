-- The order book kept by quantdag.stream (ccxt.pro watch_order_book: snapshot + sequenced diffs,
-- resnapshot on a gap), sampled: its top and the depth within its first `levels` levels.
CREATE TABLE IF NOT EXISTS market.book (
    exchange     VARCHAR     NOT NULL,
    symbol       VARCHAR     NOT NULL,
    ts           TIMESTAMPTZ NOT NULL,   -- the venue's time of the last update applied
    nonce        BIGINT,                 -- the venue's update id of that update
    bid          DOUBLE      NOT NULL,
    ask          DOUBLE      NOT NULL,
    bid_qty      DOUBLE      NOT NULL,
    ask_qty      DOUBLE      NOT NULL,
    bid_depth    DOUBLE      NOT NULL,   -- quote value of the bids within `levels` levels
    ask_depth    DOUBLE      NOT NULL,
    levels       INTEGER     NOT NULL,
    session      VARCHAR     NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL
);

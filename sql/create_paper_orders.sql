-- Paper/live orders, written ahead: a row exists (status 'submitted', no exchange id) before the order is sent.
CREATE TABLE IF NOT EXISTS paper.orders (
    client_order_id   VARCHAR     PRIMARY KEY,
    strategy          VARCHAR     NOT NULL,
    symbol            VARCHAR     NOT NULL,
    side              VARCHAR     NOT NULL,  -- 'buy' | 'sell'
    qty               DOUBLE      NOT NULL,  -- base units
    type              VARCHAR     NOT NULL,  -- 'market' | 'limit'
    price             DOUBLE,               -- limit price (NULL for market orders)
    status            VARCHAR     NOT NULL,  -- new, submitted, partially_filled, filled, canceled, rejected, expired
    exchange_order_id VARCHAR,
    filled_qty        DOUBLE      NOT NULL,
    avg_price         DOUBLE,
    fee               DOUBLE      NOT NULL,
    parent_id         VARCHAR,
    intent            VARCHAR     NOT NULL,
    reason            VARCHAR,
    broker            VARCHAR     NOT NULL,
    ts_created        TIMESTAMPTZ NOT NULL,
    ts_submitted      TIMESTAMPTZ,
    ts_acked          TIMESTAMPTZ,
    ts_updated        TIMESTAMPTZ NOT NULL
);

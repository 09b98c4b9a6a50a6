-- Fills the venue reports for orders this order manager never sent (a manual trade, another bot on
-- the same API key): reported and alerted once by reconcile, never booked into paper.fills/positions.
CREATE TABLE IF NOT EXISTS paper.foreign_fills (
    broker            VARCHAR     NOT NULL,
    symbol            VARCHAR     NOT NULL,
    trade_id          VARCHAR     NOT NULL,
    client_order_id   VARCHAR,               -- the venue's client id of that order, if it reported one
    exchange_order_id VARCHAR,
    side              VARCHAR     NOT NULL,
    qty               DOUBLE      NOT NULL,
    price             DOUBLE      NOT NULL,
    fee               DOUBLE      NOT NULL,
    fee_asset         VARCHAR     NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    ts_seen           TIMESTAMPTZ NOT NULL,  -- when a reconcile first saw it
    PRIMARY KEY (broker, symbol, trade_id)
);

-- The fill ledger: positions are defined as its replay (a sell fill reduces the position).
CREATE TABLE IF NOT EXISTS paper.fills (
    trade_id          VARCHAR     NOT NULL,
    client_order_id   VARCHAR,
    exchange_order_id VARCHAR,
    symbol            VARCHAR     NOT NULL,
    side              VARCHAR     NOT NULL,
    qty               DOUBLE      NOT NULL,
    price             DOUBLE      NOT NULL,
    fee               DOUBLE      NOT NULL,
    fee_asset         VARCHAR     NOT NULL,
    broker            VARCHAR     NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (broker, symbol, trade_id)
);

-- Net position per symbol, updated in the same transaction as the fills that move it.
CREATE TABLE IF NOT EXISTS paper.positions (
    broker        VARCHAR     NOT NULL,
    symbol        VARCHAR     NOT NULL,
    qty           DOUBLE      NOT NULL,  -- signed, base units
    avg_price     DOUBLE      NOT NULL,
    realised_pnl  DOUBLE      NOT NULL,  -- quote units, gross of fees
    fees          DOUBLE      NOT NULL,  -- quote units
    ts            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (broker, symbol)
);

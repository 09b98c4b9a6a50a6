-- The portfolio backtest's account at each candle close (one shared cash balance).
CREATE TABLE IF NOT EXISTS portfolio.equity (
    portfolio       VARCHAR     NOT NULL,
    ts              TIMESTAMPTZ NOT NULL,
    equity          DOUBLE      NOT NULL,
    cash            DOUBLE      NOT NULL,
    gross_exposure  DOUBLE      NOT NULL,   -- quote currency
    net_exposure    DOUBLE      NOT NULL,
    PRIMARY KEY (portfolio, ts)
);

-- Runs of missing candles found while cleaning: open times of the first and last missing one.
CREATE TABLE IF NOT EXISTS market.gaps (
    exchange  VARCHAR     NOT NULL,
    symbol    VARCHAR     NOT NULL,
    timeframe VARCHAR     NOT NULL,
    gap_start TIMESTAMPTZ NOT NULL,
    gap_end   TIMESTAMPTZ NOT NULL,
    missing   BIGINT      NOT NULL,
    filled    BOOLEAN     NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, gap_start)
);

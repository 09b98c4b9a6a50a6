-- Candles an exchange left out of a page (interior gaps), re-fetched a bounded number of times across
-- runs before they are accepted as real gaps (filled flat in market.candles). A healed gap's row is
-- deleted; a row with attempts = the configured maximum is a gap the exchange confirmed.
CREATE TABLE IF NOT EXISTS raw.refetches (
    exchange        VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    timeframe       VARCHAR     NOT NULL,
    gap_start       TIMESTAMPTZ NOT NULL,   -- first missing candle's open time
    gap_end         TIMESTAMPTZ NOT NULL,   -- last missing candle's open time
    missing         BIGINT      NOT NULL,
    attempts        INTEGER     NOT NULL,
    last_attempt_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, gap_start)
);

-- Market events (price jumps, volume spikes, gaps, dislocations, depegs, volatility regimes).
CREATE TABLE IF NOT EXISTS market.events (
    exchange   VARCHAR     NOT NULL,
    symbol     VARCHAR     NOT NULL,
    timeframe  VARCHAR     NOT NULL,
    event_type VARCHAR     NOT NULL,
    ts_start   TIMESTAMPTZ NOT NULL,
    ts_end     TIMESTAMPTZ NOT NULL,
    severity   VARCHAR     NOT NULL,
    score      DOUBLE      NOT NULL,
    detail     VARCHAR     NOT NULL
);

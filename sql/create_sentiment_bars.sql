-- Sentiment per candle of every configured market, from the items of its base asset that were
-- both published and fetched before the candle closed (quantdag.sentiment.bars). Joins onto
-- market.candles / features.indicators by (exchange, symbol, timeframe, ts).
CREATE TABLE IF NOT EXISTS sentiment.bars (
    exchange        VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    timeframe       VARCHAR     NOT NULL,
    ts              TIMESTAMPTZ NOT NULL,
    asset           VARCHAR     NOT NULL,
    sent_count      INTEGER     NOT NULL,
    sent_mean       DOUBLE,
    sent_dispersion DOUBLE,
    sent_decayed    DOUBLE      NOT NULL
);

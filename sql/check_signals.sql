-- Do a parameter set's signals on one market line up with the market's stored candles? (violations 0 when healthy)
-- Every candle must have exactly one signal row, and every signal row a candle.
-- $1 strategy, $2 params_hash, $3 exchange, $4 symbol, $5 timeframe.
WITH c AS (
    SELECT ts FROM market.candles WHERE exchange = $3 AND symbol = $4 AND timeframe = $5
), s AS (
    SELECT ts, count(*) AS n FROM signals.signals
    WHERE strategy = $1 AND params_hash = $2 AND exchange = $3 AND symbol = $4 AND timeframe = $5
    GROUP BY ts
)
SELECT
    (SELECT count(*) FROM c) AS candles,
    (SELECT coalesce(sum(n), 0) FROM s) AS signal_rows,
    (SELECT count(*) FROM c LEFT JOIN s USING (ts) WHERE s.n IS DISTINCT FROM 1) AS candles_without_one_signal,
    (SELECT count(*) FROM s ANTI JOIN c USING (ts)) AS signals_without_candle;

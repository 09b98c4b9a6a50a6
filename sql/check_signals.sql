-- Do parameter sets' signals on one market line up with its stored candles? One row per (strategy, params_hash)
-- (violations 0 when healthy): every candle must have exactly one signal row, and every signal row a candle.
-- $1 strategies, $2 their params hashes (lists of equal length), $3 exchange, $4 symbol, $5 timeframe.
WITH k AS (
    SELECT unnest($1::VARCHAR[]) AS strategy, unnest($2::VARCHAR[]) AS params_hash
), c AS (
    SELECT ts FROM market.candles WHERE exchange = $3 AND symbol = $4 AND timeframe = $5
), s AS (
    SELECT strategy, params_hash, ts, count(*) AS n FROM signals.signals
    WHERE exchange = $3 AND symbol = $4 AND timeframe = $5
      AND (strategy, params_hash) IN (SELECT (strategy, params_hash) FROM k)
    GROUP BY ALL
), per_candle AS (
    SELECT k.strategy, k.params_hash, count(*) AS candles,
           count(*) FILTER (WHERE s.n IS DISTINCT FROM 1) AS candles_without_one_signal
    FROM k CROSS JOIN c
    LEFT JOIN s ON s.strategy = k.strategy AND s.params_hash = k.params_hash AND s.ts = c.ts
    GROUP BY ALL
), per_signal AS (
    SELECT strategy, params_hash, sum(n) AS signal_rows,
           count(*) FILTER (WHERE ts NOT IN (SELECT ts FROM c)) AS signals_without_candle
    FROM s GROUP BY ALL
)
SELECT k.strategy, k.params_hash,
       coalesce(per_candle.candles, 0) AS candles,
       coalesce(per_signal.signal_rows, 0) AS signal_rows,
       coalesce(per_candle.candles_without_one_signal, 0) AS candles_without_one_signal,
       coalesce(per_signal.signals_without_candle, 0) AS signals_without_candle
FROM k
LEFT JOIN per_candle USING (strategy, params_hash)
LEFT JOIN per_signal USING (strategy, params_hash);

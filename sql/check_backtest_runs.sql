-- What parameter sets' stored backtests on one market ran on, and with which costs: one row per (strategy, params_hash).
-- holes / hole_candles: runs of missing candles between stored candles of the market inside a run's data range
-- (quantdag/data/holes.py); zero_cost_runs: runs without a fee or without slippage.
-- $1 strategies, $2 their params hashes (lists of equal length), $3 exchange, $4 symbol, $5 timeframe,
-- $6 timeframe in ms. A hole counts for a run when both its candles lie inside the run's data range.
WITH k AS (
    SELECT unnest($1::VARCHAR[]) AS strategy, unnest($2::VARCHAR[]) AS params_hash
), r AS (
    SELECT strategy, params_hash, data_start, data_end, settings FROM backtest.runs
    WHERE exchange = $3 AND symbol = $4 AND timeframe = $5
      AND (strategy, params_hash) IN (SELECT (strategy, params_hash) FROM k)
), ranges AS (
    SELECT strategy, params_hash, min(data_start) AS lo, max(data_end) AS hi FROM r GROUP BY ALL
), c AS (
    SELECT ts, lead(ts) OVER (ORDER BY ts) AS nxt_ts FROM market.candles
    WHERE exchange = $3 AND symbol = $4 AND timeframe = $5
), holes AS (
    SELECT g.strategy, g.params_hash, count(*) AS holes,
           sum((epoch_ms(c.nxt_ts) - epoch_ms(c.ts)) // $6 - 1) AS hole_candles
    FROM ranges g JOIN c ON c.ts >= g.lo AND c.nxt_ts <= g.hi
    WHERE epoch_ms(c.nxt_ts) - epoch_ms(c.ts) > $6
    GROUP BY ALL
), costs AS (
    SELECT strategy, params_hash, count(*) AS runs,
           count(*) FILTER (WHERE NOT (fee > 0 AND (slippage > 0 OR (slippage_model = 'volatility' AND vol_factor > 0))))
               AS zero_cost_runs
    FROM (
        SELECT strategy, params_hash,
            coalesce(try_cast(json_extract_string(settings, '$.fee') AS DOUBLE), 0) AS fee,
            coalesce(try_cast(json_extract_string(settings, '$.slippage') AS DOUBLE), 0) AS slippage,
            coalesce(json_extract_string(settings, '$.slippage_model'), 'fixed') AS slippage_model,
            coalesce(try_cast(json_extract_string(settings, '$.slippage_vol_factor') AS DOUBLE), 0) AS vol_factor
        FROM r
    )
    GROUP BY ALL
)
SELECT k.strategy, k.params_hash,
       coalesce(costs.runs, 0) AS runs,
       coalesce(holes.holes, 0) AS holes,
       coalesce(holes.hole_candles, 0) AS hole_candles,
       coalesce(costs.zero_cost_runs, 0) AS zero_cost_runs
FROM k
LEFT JOIN costs USING (strategy, params_hash)
LEFT JOIN holes USING (strategy, params_hash);

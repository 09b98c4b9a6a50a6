-- What a parameter set's stored backtest on one market ran on, and with which costs.
-- holes / hole_candles: runs of missing candles between stored candles of the market inside the
-- run's data range (quantdag/data/holes.py); zero_cost_runs: runs without a fee or without slippage.
-- $1 strategy, $2 params_hash, $3 exchange, $4 symbol, $5 timeframe, $6 timeframe in ms.
WITH r AS (
    SELECT data_start, data_end, settings FROM backtest.runs
    WHERE strategy = $1 AND params_hash = $2 AND exchange = $3 AND symbol = $4 AND timeframe = $5
), c AS (
    SELECT epoch_ms(ts) AS t, lead(epoch_ms(ts)) OVER (ORDER BY ts) AS nxt
    FROM market.candles
    WHERE exchange = $3 AND symbol = $4 AND timeframe = $5
      AND ts >= (SELECT min(data_start) FROM r) AND ts <= (SELECT max(data_end) FROM r)
), holes AS (
    SELECT (nxt - t) // $6 - 1 AS missing FROM c WHERE nxt - t > $6
), costs AS (
    SELECT
        coalesce(try_cast(json_extract_string(settings, '$.fee') AS DOUBLE), 0) AS fee,
        coalesce(try_cast(json_extract_string(settings, '$.slippage') AS DOUBLE), 0) AS slippage,
        coalesce(json_extract_string(settings, '$.slippage_model'), 'fixed') AS slippage_model,
        coalesce(try_cast(json_extract_string(settings, '$.slippage_vol_factor') AS DOUBLE), 0) AS vol_factor
    FROM r
)
SELECT
    (SELECT count(*) FROM r) AS runs,
    (SELECT count(*) FROM holes) AS holes,
    (SELECT coalesce(sum(missing), 0) FROM holes) AS hole_candles,
    (SELECT count(*) FROM costs
      WHERE NOT (fee > 0 AND (slippage > 0 OR (slippage_model = 'volatility' AND vol_factor > 0)))) AS zero_cost_runs;

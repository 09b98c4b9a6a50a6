-- Violation counts for one market's candles in [start, end), as of `now` (all 0 when healthy).
-- $1 exchange, $2 symbol, $3 timeframe, $4 start, $5 end, $6 timeframe in ms, $7 now.
WITH c AS (
    SELECT * FROM market.candles
    WHERE exchange = $1 AND symbol = $2 AND timeframe = $3 AND ts >= $4 AND ts < $5
), unfilled AS (
    -- missing candles recorded as unfilled gaps, counted inside the window only: a hole (a gap
    -- between stored candles, quantdag/data/holes.py) may start before the window or end after it
    SELECT coalesce(sum(greatest(0,
        (least(epoch_ms(gap_end), (epoch_ms($5::TIMESTAMPTZ) - 1) // $6 * $6)
         - greatest(epoch_ms(gap_start), (epoch_ms($4::TIMESTAMPTZ) + $6 - 1) // $6 * $6)) // $6 + 1)), 0) AS n
    FROM market.gaps
    WHERE exchange = $1 AND symbol = $2 AND timeframe = $3 AND NOT filled AND gap_start < $5 AND gap_end >= $4
), expected AS (
    -- closed grid slots in the window: open time t with start <= t < end and t + tf <= now
    SELECT greatest(0, (least(epoch_ms($5::TIMESTAMPTZ) - 1, epoch_ms($7::TIMESTAMPTZ) - $6) - epoch_ms($4::TIMESTAMPTZ)) // $6 + 1) AS n
)
SELECT
    (SELECT count(*) - count(DISTINCT ts) FROM c) AS duplicate_keys,
    (SELECT count(*) FROM c
      WHERE NOT (isfinite(open) AND isfinite(high) AND isfinite(low) AND isfinite(close) AND isfinite(volume)
                 AND low > 0 AND volume >= 0 AND high >= greatest(open, close) AND low <= least(open, close))
    ) AS broken_ohlc,
    (SELECT count(*) FROM c WHERE epoch_ms(ts) + $6 > epoch_ms($7::TIMESTAMPTZ)) AS unclosed,
    (SELECT count(*) FROM c WHERE epoch_ms(ts) % $6 <> 0) AS off_grid,
    (SELECT greatest(0, expected.n - (SELECT count(*) FROM c) - unfilled.n) FROM expected, unfilled) AS missing_unrecorded;

-- Missing candles of holes in one market's whole stored series that market.gaps does not record (0 when healthy).
-- A hole is a run of empty grid slots between two consecutive stored candles; it is recorded by an
-- unfilled market.gaps row with the same first and last missing candle (see quantdag/data/holes.py).
-- $1 exchange, $2 symbol, $3 timeframe, $4 timeframe in ms.
WITH c AS (
    SELECT epoch_ms(ts) AS t, lead(epoch_ms(ts)) OVER (ORDER BY ts) AS nxt
    FROM market.candles
    WHERE exchange = $1 AND symbol = $2 AND timeframe = $3
), holes AS (
    SELECT t + $4 AS first_ms, nxt - $4 AS last_ms, (nxt - t) // $4 - 1 AS missing
    FROM c
    WHERE nxt - t > $4
)
SELECT coalesce(sum(missing), 0) AS holes_unrecorded
FROM holes h
WHERE NOT EXISTS (
    SELECT 1 FROM market.gaps g
    WHERE g.exchange = $1 AND g.symbol = $2 AND g.timeframe = $3 AND NOT g.filled
      AND epoch_ms(g.gap_start) = h.first_ms AND epoch_ms(g.gap_end) = h.last_ms
);

-- The ML join: every indicator row of a market with the sentiment its candle could have known at
-- its close (sentiment.bars is point in time per candle; NULL columns: sentiment not built there).
-- Parameters: exchange, symbol, timeframe.
SELECT i.*, b.sent_count, b.sent_mean, b.sent_dispersion, b.sent_decayed
FROM features.indicators i
LEFT JOIN sentiment.bars b USING (exchange, symbol, timeframe, ts)
WHERE i.exchange = ? AND i.symbol = ? AND i.timeframe = ?
ORDER BY i.ts

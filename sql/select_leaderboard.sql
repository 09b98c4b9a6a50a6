-- Every stored backtest, best Sharpe first, among runs with at least ? trades (the sample size is
-- listed: a 1-trade Sharpe means nothing); runs with fewer trades follow, unranked, by trades.
SELECT strategy, symbol, timeframe, total_return, sharpe, max_drawdown, n_trades, fees_paid, param_set, mlflow_run_id,
       n_trades >= ? AS ranked
FROM backtest.runs
ORDER BY ranked DESC, CASE WHEN ranked THEN sharpe END DESC NULLS LAST, n_trades DESC, total_return DESC;

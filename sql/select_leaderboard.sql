-- Every stored backtest, best Sharpe first: what `make demo` prints.
SELECT strategy, symbol, timeframe, total_return, sharpe, max_drawdown, n_trades, fees_paid, param_set, mlflow_run_id
FROM backtest.runs
ORDER BY sharpe DESC NULLS LAST, total_return DESC;

"""What an MLflow run of a backtest holds: parameters, metrics, the equity curve, artifacts.

Called inside an active MLflow run (the pipeline's resource opens it and tags it with the
Dagster run, asset and partition). Metrics go in batches so a long equity curve costs a few
requests, not one per candle.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

from quantdag.backtest import BacktestResult

_BATCH = 1000  # MLflow's limit of metrics per log_batch call


def _clean_params(params: dict[str, Any], prefix: str) -> dict[str, str]:
    return {f"{prefix}{k}": str(v)[:500] for k, v in params.items()}


def log_backtest(
    result: BacktestResult,
    *,
    strategy_params: dict[str, Any],
    market: dict[str, str],
    equity_points: int = 2000,
) -> None:
    """Log ``result`` into the active MLflow run.

    Parameters
    ----------
    strategy_params:
        The strategy's parameters (logged as ``param.<name>``).
    market:
        exchange/symbol/timeframe (logged as params).
    equity_points:
        At most this many points of the equity curve as the step metric ``equity`` (evenly
        thinned: the full curve is in the ``equity.parquet`` artifact).
    """
    import mlflow
    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_backtest needs an active MLflow run")
    client = mlflow.MlflowClient()
    params = {
        **_clean_params(strategy_params, "param."),
        **_clean_params(result.settings.as_dict(), "setting."),
        **market,
    }
    mlflow.log_params(params)
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in result.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)]
    eq = result.equity
    step = max(1, eq.height // equity_points)
    thinned = eq.gather_every(step)
    ts_ms = thinned["ts"].dt.epoch("ms").to_list()
    metrics += [Metric("equity", float(v), int(t), i) for i, (v, t) in enumerate(zip(thinned["equity"].to_list(), ts_ms))]
    for i in range(0, len(metrics), _BATCH):
        client.log_batch(run.info.run_id, metrics=metrics[i : i + _BATCH])
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        result.trades.write_parquet(d / "trades.parquet")
        eq.write_parquet(d / "equity.parquet")
        result.report(d / "report.html", title=f"{market.get('symbol', '')} {market.get('timeframe', '')}")
        mlflow.log_artifacts(tmp)

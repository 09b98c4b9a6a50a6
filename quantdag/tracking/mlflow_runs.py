"""What an MLflow run of a backtest holds: parameters, metrics, the equity curve, artifacts.

Called inside an active MLflow run (the pipeline's resource opens it and tags it with the
Dagster run, asset and partition). A backtest's run is one ``log_batch`` plus its artifacts.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from quantdag.backtest import BacktestResult

_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_RUN_NAME_MAX = 200

log = logging.getLogger(__name__)


def _clean_params(params: dict[str, Any], prefix: str) -> dict[str, str]:
    return {f"{prefix}{k}": str(v)[:500] for k, v in params.items()}


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def child_run_name(rank: int, params: dict[str, Any]) -> str:
    """``"#1 fast=40 slow=80"``: a sweep's ``rank``-th best combination, named by ``params`` (the
    swept ones: those every child shares are in its parameters, not its name)."""
    name = " ".join([f"#{rank}", *(f"{k}={_value(v)}" for k, v in params.items())])
    return name if len(name) <= _RUN_NAME_MAX else name[: _RUN_NAME_MAX - 1] + "…"


def _log_batch(run_id: str, values: dict[str, Any], params: dict[str, str]) -> None:
    """The finite numeric ``values`` as metrics and ``params``, in as few ``log_batch`` calls as MLflow allows."""
    import mlflow
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    metrics = [Metric(k[:250], float(v), now, 0) for k, v in values.items()
               if isinstance(v, (int, float)) and math.isfinite(v)]  # fmt: skip
    client = mlflow.MlflowClient()
    for i in range(0, max(len(metrics), 1), _BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + _BATCH],
                         params=[Param(k, v) for k, v in params.items()] if i == 0 else [])  # fmt: skip


def log_backtest(
    result: BacktestResult,
    *,
    strategy_params: dict[str, Any],
    market: dict[str, str],
    title: str | None = None,
) -> None:
    """Log ``result`` into the active MLflow run: one ``log_batch`` and one artifact upload.

    Parameters (``param.<name>``, ``setting.<name>``, exchange/symbol/timeframe) and the summary
    metrics go in a single request; the equity curve, trades and the HTML report are artifacts
    (``equity.parquet``, ``trades.parquet``, ``report.html``). The curve is not logged as a step
    metric: thousands of metric rows cost MLflow's SQL store about half a second per run and
    duplicated what the artifact holds exactly.

    Parameters
    ----------
    strategy_params:
        The strategy's parameters (logged as ``param.<name>``).
    market:
        exchange/symbol/timeframe (logged as params).
    title:
        The tear sheet's title: the strategy with its parameters and the market (default: the market).
    """
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_backtest needs an active MLflow run")
    params = {
        **_clean_params(strategy_params, "param."),
        **_clean_params(result.settings.as_dict(), "setting."),
        **market,
    }
    _log_batch(run.info.run_id, result.metrics, params)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        result.trades.write_parquet(d / "trades.parquet")
        result.equity.write_parquet(d / "equity.parquet")
        result.report(d / "report.html", title=title or f"{market.get('symbol', '')} {market.get('timeframe', '')}")
        mlflow.log_artifacts(tmp)


def log_sweep(outcome: Any, *, top_k: int = 5) -> list[str]:
    """Log a sweep into the active (parent) MLflow run, plus its top ``top_k`` as nested runs.

    The parent holds the search space, the best parameters, DSR and PBO as metrics, and the
    full results table (parquet), the heatmap and the summary as artifacts. Child runs carry
    only parameters and metrics, so logging stays small next to the sweep itself; each is named
    by its rank and varied parameters (:func:`child_run_name`).

    A space with fewer than two varied parameters has no 2-D heatmap: logged and skipped. Any
    other failure to draw it raises.

    Returns
    -------
    list[str]
        The child run ids, best first.
    """
    import mlflow

    result = outcome.result
    s = result.summary()
    mlflow.log_params(
        {
            "strategy": s["strategy"], "search": s["search"], "objective": s["objective"],
            "min_trades": s["min_trades"], "n_evaluated": s["n_evaluated"],
            **{f"best.{k}": v for k, v in s["best_params"].items()},
            **_clean_params(s["settings"], "setting."), **outcome.market.where,
        }
    )  # fmt: skip
    flat = {f"best_{k}": float(v) for k, v in s["best_metrics"].items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if s["dsr"] is not None and math.isfinite(s["dsr"]["dsr"]):
        flat["dsr"] = float(s["dsr"]["dsr"])
    if s["pbo"] is not None and math.isfinite(s["pbo"]["pbo"]):
        flat["pbo"] = float(s["pbo"]["pbo"])
    mlflow.log_metrics(flat)
    mlflow.log_dict(s, "summary.json")
    varied = [n for n in result.param_names if result.results[n].n_unique() > 1]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        result.results.write_parquet(d / "results.parquet")
        if len(varied) >= 2:
            result.heatmap_png(d / "heatmap.png")
        else:
            log.info("sweep of %s: no heatmap (varied parameters %s; a heatmap needs two)", s["strategy"], varied)
        mlflow.log_artifacts(tmp)
    from quantdag.optimize.search import rank_results  # the sweep's own ranking: children are its top k

    ranked = rank_results(result.results, s["objective"], s["min_trades"]).head(top_k)
    child_ids = []
    experiment_id = mlflow.active_run().info.experiment_id
    for i, row in enumerate(ranked.iter_rows(named=True)):
        params = {n: row[n] for n in result.param_names}
        with mlflow.start_run(run_name=child_run_name(i + 1, {n: params[n] for n in varied}), nested=True, experiment_id=experiment_id) as child:
            mlflow.log_params(params)
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k not in result.param_names
                                and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)})
            child_ids.append(child.info.run_id)
    return child_ids


def log_portfolio(result: Any, *, members: dict[str, str]) -> None:
    """Log a portfolio backtest into the active MLflow run: settings and members as parameters,
    metrics, attribution as metrics per strategy, and the equity, trades, attribution and tear sheet
    as artifacts (one ``log_batch``)."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_portfolio needs an active MLflow run")
    settings = {k: v for k, v in result.settings.items() if k not in ("strategies", "shares", "risk")}
    params = {**_clean_params(settings, "setting."), **_clean_params(result.settings.get("risk", {}), "risk."),
              **_clean_params(result.settings.get("shares", {}), "share."), **_clean_params(members, "member.")}  # fmt: skip
    by_strategy = result.attribution.group_by("strategy").agg(pl.col("net_pnl").sum()).iter_rows()
    _log_batch(run.info.run_id, {**result.metrics, **{f"net_pnl.{s}": float(v) for s, v in by_strategy}}, params)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        result.equity.write_parquet(d / "equity.parquet")
        result.trades.write_parquet(d / "trades.parquet")
        result.attribution.write_parquet(d / "attribution.parquet")
        result.report(d / "report.html")
        mlflow.log_artifacts(tmp)

"""Optimization: sweep a strategy on a market's stored candles and store the sweep.

The sweep itself is :func:`quantdag.optimize.optimize_strategy`; this module picks the search
for the strategy's space, and writes ``optimize.sweeps`` (one row: best parameters with their
deflated Sharpe ratio and PBO) and ``optimize.results`` (every combination) in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import polars as pl

from quantdag.backtest import BacktestSettings
from quantdag.errors import DataError
from quantdag.markets import Market
from quantdag.optimize import OptimizationResult, optimize_strategy
from quantdag.optimize.search import NoEligibleCombination
from quantdag.stages.common import StageReport, finite_or_none, read_candles
from quantdag.store import Slice, Warehouse
from quantdag.strategies import create_strategy, get_strategy
from quantdag.strategies.keys import param_set_key
from quantdag.tracking import log_sweep

#: Above this many grid points the sweep samples the space instead of enumerating it (default).
MAX_GRID = 5000


class SweepSkipped(DataError):
    """The stored history is too short for even the fastest combination: there is nothing to sweep yet."""


@dataclass(frozen=True)
class SweepOutcome:
    """A finished sweep of one strategy on one market."""

    market: Market
    result: OptimizationResult
    best_param_set: str
    data_start: Any
    data_end: Any


def run_sweep(
    wh: Warehouse,
    strategy: str,
    market: Market,
    *,
    objective: str = "sharpe",
    min_trades: int = 5,
    n_trials: int = 200,
    seed: int = 0,
    max_grid: int = MAX_GRID,
    settings: BacktestSettings | None = None,
) -> SweepOutcome:
    """Sweep ``strategy`` on ``market``'s stored candles: the full grid if small, else random search.

    ``settings`` are the backtest's (costs, sizing, stops); the market's timeframe is set here.
    Combinations that need more history than is stored are left out (and counted in the
    summary's search space).

    Raises
    ------
    SweepSkipped
        If no combination fits the stored history, or none trades ``min_trades`` times on it.
    """
    cls = get_strategy(strategy)
    space = cls.param_space()
    search = "grid" if space.grid_size() <= max_grid else "random"
    candles = read_candles(wh, market)
    if candles.height == 0:
        raise SweepSkipped(f"sweep of {strategy} on {market.key}: no stored candles yet")
    try:
        result = optimize_strategy(
            candles, strategy, search=search, objective=objective, min_trades=min_trades, n_trials=n_trials,
            seed=seed, settings=settings, timeframe=market.timeframe, fit_history=True,
        )
    except NoEligibleCombination as exc:
        raise SweepSkipped(f"sweep of {strategy} on {market.key} ({candles.height} candles) skipped: {exc}") from exc
    except DataError as exc:
        if "too few" not in str(exc):
            raise
        raise SweepSkipped(f"sweep of {strategy} on {market.key} skipped: {exc}") from exc
    best = create_strategy(strategy, result.best["params"])
    return SweepOutcome(market, result, param_set_key(best), candles["ts"].min(), candles["ts"].max())


def store_sweep(wh: Warehouse, o: SweepOutcome, *, mlflow_run_id: str | None = None, dagster_run_id: str | None = None) -> StageReport:
    """Replace the market's sweep of this strategy in ``optimize.sweeps`` and ``optimize.results``."""
    t0 = time.perf_counter()
    s = o.result.summary()
    m = o.market
    report = StageReport()
    cls = get_strategy(s["strategy"])
    names = [n for n in o.result.param_names]
    res = o.result.results
    metric_cols = [c for c in res.columns if c not in names]
    rows = []
    for r in res.iter_rows(named=True):
        strat = cls.from_params({n: r[n] for n in names})
        metrics = {c: finite_or_none(r[c]) for c in metric_cols}
        rows.append({
            "strategy": s["strategy"], **m.where, "params_hash": strat.params_hash, "params": strat.params_json,
            "objective": finite_or_none(r.get(s["objective"])), "final_equity": r["final_equity"], "n_trades": r["n_trades"],
            "total_return": metrics.get("total_return"), "sharpe": metrics.get("sharpe"),
            "max_drawdown": metrics.get("max_drawdown"), "metrics": json.dumps(metrics, sort_keys=True),
        })  # fmt: skip
    results = pl.DataFrame(rows, infer_schema_length=None).unique(subset=["params_hash"], keep="first", maintain_order=True)
    sweep = pl.DataFrame([{
        "strategy": s["strategy"], **m.where, "search": s["search"], "objective": s["objective"],
        "min_trades": s["min_trades"], "n_evaluated": s["n_evaluated"], "best_param_set": o.best_param_set,
        "best_params": json.dumps(s["best_params"], sort_keys=True),
        "best_objective": finite_or_none(s["best_metrics"].get(s["objective"])),
        "best_metrics": json.dumps(s["best_metrics"], sort_keys=True),
        "dsr": None if s["dsr"] is None else finite_or_none(s["dsr"]["dsr"]),
        "pbo": None if s["pbo"] is None else finite_or_none(s["pbo"]["pbo"]),
        "search_space": json.dumps(s["search_space"], sort_keys=True, default=str),
        "settings": json.dumps(s["settings"], sort_keys=True), "data_start": o.data_start, "data_end": o.data_end,
        "mlflow_run_id": mlflow_run_id, "dagster_run_id": dagster_run_id,
    }], infer_schema_length=None)  # fmt: skip
    where = Slice(where={"strategy": s["strategy"], **m.where}, time_column=None)
    with wh.transaction() as con:
        report.rows_written += Warehouse.replace(con, "optimize.sweeps", sweep, [where])
        report.rows_written += Warehouse.replace(
            con, "optimize.results", results, [where], order_by=("strategy", "exchange", "symbol", "timeframe", "params_hash")
        )
    report.add(m, combos=results.height)
    report.seconds = time.perf_counter() - t0
    return report


@dataclass(frozen=True)
class SweepStage:
    """What :func:`sweep_strategy` did: the sweep, what it stored, and its tracking run (if any)."""

    outcome: SweepOutcome
    report: StageReport
    run: Any = None


def sweep_strategy(
    wh: Warehouse,
    strategy: str,
    market: Market,
    *,
    start_run: Callable[[str, dict[str, str]], AbstractContextManager[Any]] | None = None,
    top_k: int = 5,
    dagster_run_id: str | None = None,
    **sweep: Any,
) -> SweepStage:
    """The whole stage: :func:`run_sweep` (``sweep`` are its options), log it, store it.

    ``start_run(name, tags)`` opens the parent tracking run (``sweep <strategy> · <SYMBOL:TF>``),
    which gets the summary and artifacts, and the ``top_k`` best combinations as nested runs.

    Raises
    ------
    SweepSkipped
        If the stored history is too short for the sweep (nothing is logged or stored).
    """
    outcome = run_sweep(wh, strategy, market, **sweep)
    run = None
    if start_run is not None:
        with start_run(f"sweep {strategy} · {market.key}", {"strategy": strategy, "market": market.key}) as run:
            log_sweep(outcome, top_k=top_k)
    report = store_sweep(wh, outcome, mlflow_run_id=run.info.run_id if run is not None else None, dagster_run_id=dagster_run_id)
    return SweepStage(outcome, report, run)

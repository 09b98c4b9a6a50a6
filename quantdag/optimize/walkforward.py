"""Walk-forward optimisation: optimise in-sample, trade the winner out-of-sample, stitch.

Windows (``k = 0, 1, ...``, in candles): rolling ``IS = [k*test, k*test + train)``; anchored
``IS = [0, k*test + train)``; both ``OOS = [k*test + train, k*test + train + test)`` clipped to the
data. Out of sample, the winner's signals are computed on all candles up to the window's end
(signals are causal, so the warm-up comes from real history) and backtested on the window only,
starting from the previous window's final equity: the stitched equity is continuous.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest import BacktestSettings, run
from quantdag.errors import ConfigurationError, DataError
from quantdag.optimize.grid import MINIMISE, check_candles, check_metric, expand_grid, make_settings, resolve_strategy, sweep_combos
from quantdag.optimize.search import rank_results
from quantdag.strategies import create_strategy


@dataclass
class WalkForwardResult:
    windows: pl.DataFrame  # one row per window: bounds, chosen params (JSON), IS and OOS objective
    oos_equity: pl.DataFrame  # ts, equity: stitched out-of-sample equity
    is_oos_ratio: float  # mean OOS objective / mean IS objective (walk-forward efficiency)
    objective: str


def windows(n: int, train: int, test: int, anchored: bool = False) -> list[tuple[int, int, int, int]]:
    """``(is_start, is_end, oos_start, oos_end)`` of every window over ``n`` candles."""
    for name, v in (("train", train), ("test", test)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise ConfigurationError(f"{name} must be an integer >= 2 candles, got {v!r}")
    if n < train + test:
        raise DataError(f"{n} candles are too few for one walk-forward window: train={train} + test={test} = {train + test}")
    out = []
    k = 0
    while k * test + train < n:
        start = 0 if anchored else k * test
        out.append((start, k * test + train, k * test + train, min(k * test + train + test, n)))
        k += 1
    if out[-1][3] - out[-1][2] < 2:
        out.pop()
    return out


def _slice_signals(candles: pl.DataFrame, name: str, params: Mapping[str, Any], a: int, b: int) -> pl.DataFrame:
    return create_strategy(name, params).signals(candles.slice(0, b)).slice(a, b - a)


def walk_forward(
    candles: pl.DataFrame,
    strategy: str,
    grid: Mapping[str, Any],
    *,
    train: int,
    test: int,
    anchored: bool = False,
    objective: str = "sharpe",
    min_trades: int = 1,
    settings: BacktestSettings | None = None,
    n_jobs: int | None = None,
    **kwargs: Any,
) -> WalkForwardResult:
    """Walk-forward optimisation of ``grid`` (see the module docstring); validates before any work.

    Raises
    ------
    ConfigurationError
        Bad grid/metric/setting/window sizes. DataError: too few candles for the windows or for
        the slowest combination in a training window.
    """
    check_metric(objective)
    cls = resolve_strategy(strategy)
    s = make_settings(settings, **kwargs)
    combos = expand_grid(cls, grid)
    wins = windows(candles.height, train, test, anchored)
    check_candles(candles.slice(0, train), cls, combos, what=f"training window of {train} candles", validated=True)
    if cls(**combos[0]).emits_shorts() or s.direction == "both":
        raise ConfigurationError("walk_forward supports long or short signal strategies (entry/exit) only")
    rows, ts_parts, eq_parts = [], [], []
    cash = float(s.init_cash)
    for a, b, c, d in wins:
        table = sweep_combos(candles.slice(a, b - a), cls, combos, s, n_jobs=n_jobs, checked=True)
        ranked = rank_results(table, objective, min_trades)
        if ranked.height == 0:
            raise ConfigurationError(f"window [{a}, {b}): no combination has >= {min_trades} trades and a finite {objective}")
        top = ranked.row(0, named=True)
        params = {k: top[k] for k in cls.param_defs()}
        sig = _slice_signals(candles, cls.name, params, c, d)
        oos = candles.slice(c, d - c)
        res = run(oos, sig["entry"], sig["exit"], settings=s.replace(init_cash=cash))
        cash = res.final_equity
        ts_parts.append(oos["ts"])
        eq_parts.append(res.equity_array)
        rows.append({"is_start": a, "is_end": b, "oos_start": c, "oos_end": d,
                     "is_start_ts": candles["ts"][a], "oos_start_ts": candles["ts"][c],
                     "params": str(params), "is_objective": float(top[objective]),
                     "oos_objective": float(res.metrics[objective]), "oos_final_equity": cash})  # fmt: skip
    wf = pl.DataFrame(rows)
    oos_equity = pl.DataFrame({"ts": pl.concat(ts_parts), "equity": np.concatenate(eq_parts)})
    is_mean = float(np.nanmean(wf["is_objective"].to_numpy()))
    oos_mean = float(np.nanmean(wf["oos_objective"].to_numpy()))
    ratio = oos_mean / is_mean if is_mean != 0 else float("nan")
    return WalkForwardResult(wf, oos_equity, ratio, objective)

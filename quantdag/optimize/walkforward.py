"""Walk-forward optimisation: optimise in-sample, trade the winners out-of-sample as one account.

Windows (``k = 0, 1, ...``, in candles): rolling ``IS = [k*test, k*test + train)``; anchored
``IS = [0, k*test + train)``; both ``OOS = [k*test + train, k*test + train + test)`` clipped to the
data. Window ``k``'s winner is chosen on its IS candles only; its signals are computed on all
candles up to the end of its OOS window (signals are causal, so the warm-up comes from real
history) and kept for the OOS candles. Those stitched signals are then backtested **once** over
the whole span, flat before the first OOS candle, as a live strategy would trade them: a
position open when a window ends carries into the next, whose winner keeps or exits it by its
own signals (at the next open, as every signal), and every fill pays the engine's fee and
slippage -- there is no free flattening at window boundaries. A position still open at the end
is marked at the last close, as :func:`quantdag.backtest.run` does.

Per-window OOS metrics are that run's slice: equity over the window against the equity it
inherited, trades closed in it (a trade spanning a boundary counts as open in the earlier
window), and fees/slippage/turnover of the fills in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest import BacktestResult, BacktestSettings, enums, run
from quantdag.backtest.metrics import compute_metrics
from quantdag.errors import ConfigurationError, DataError
from quantdag.optimize.grid import check_candles, check_metric, expand_grid, make_settings, resolve_strategy, sweep_combos
from quantdag.optimize.search import rank_results
from quantdag.strategies import create_strategy


@dataclass
class WalkForwardResult:
    windows: pl.DataFrame  # one row per window: bounds, chosen params (JSON), IS and OOS objective
    oos_equity: pl.DataFrame  # ts, equity: out-of-sample equity of the one stitched backtest
    is_oos_ratio: float  # mean OOS objective / mean IS objective (walk-forward efficiency)
    objective: str
    # trades of that backtest (BacktestResult.trades; bars index the input candles)
    oos_trades: pl.DataFrame = field(default_factory=pl.DataFrame)


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
    """Signals on candles ``[a, b)``, computed on candles ``[0, b)`` only (no look past ``b``)."""
    return create_strategy(name, params).signals(candles.slice(0, b)).slice(a, b - a)


def _pinned(s: BacktestSettings, bar_ms: float) -> BacktestSettings:
    """``s`` with the candle length the full run inferred, so a prefix run sizes (target_vol) alike."""
    if s.timeframe is not None or bar_ms <= 0 or bar_ms % 60_000:
        return s
    return s.replace(timeframe=f"{int(bar_ms) // 60_000}m")


def _fill_totals(res: BacktestResult) -> np.ndarray:
    """Fees, slippage and traded value over all fills of ``res``."""
    return np.array([res.stats[enums.S_FEES], res.stats[enums.S_SLIPPAGE], res.stats[enums.S_TRADED_VALUE]])


def _window_metrics(res: BacktestResult, c: int, d: int, fills: np.ndarray) -> dict[str, Any]:
    """The engine's metrics of candles ``[c, d)`` of ``res``, as if the window were its own run
    that started with the equity (and position) window ``k - 1`` left it; ``fills`` = fees,
    slippage and traded value of the fills in the window."""
    tr = res.trade_records
    entry, exit_, is_open = tr[:, enums.T_ENTRY_IDX], tr[:, enums.T_EXIT_IDX], tr[:, enums.T_OPEN] > 0
    closed = ~is_open & (exit_ >= c) & (exit_ < d)
    spans_end = (entry < d) & (is_open | (exit_ >= d))
    keep = closed | spans_end
    return compute_metrics(
        equity=res.equity_array[c:d],
        position=res.position_array[c:d],
        init_cash=float(res.equity_array[c - 1]),
        periods_per_year=res.periods_per_year,
        bar_ms=res.bar_ms,
        trade_pnl=tr[keep, enums.T_PNL],
        trade_bars=exit_[keep] - entry[keep],
        trade_open=spans_end[keep],
        fees_paid=float(fills[0]),
        slippage_paid=float(fills[1]),
        traded_value=float(fills[2]),
    )


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
    end = wins[-1][3]
    entries = np.zeros(end, dtype=np.bool_)  # flat before the first OOS candle
    exits = np.zeros(end, dtype=np.bool_)
    chosen: list[tuple[dict[str, Any], float]] = []
    for a, b, c, d in wins:
        table = sweep_combos(candles.slice(a, b - a), cls, combos, s, n_jobs=n_jobs, checked=True)
        ranked = rank_results(table, objective, min_trades)
        if ranked.height == 0:
            raise ConfigurationError(f"window [{a}, {b}): no combination has >= {min_trades} trades and a finite {objective}")
        top = ranked.row(0, named=True)
        params = {k: top[k] for k in cls.param_defs()}
        sig = _slice_signals(candles, cls.name, params, c, d)
        entries[c:d] = sig["entry"].to_numpy()
        exits[c:d] = sig["exit"].to_numpy()
        chosen.append((params, float(top[objective])))
    # one account over the whole span: positions carry across windows and every exit pays costs
    span = candles.slice(0, end)
    res = run(span, entries, exits, settings=s)
    pinned = _pinned(s, res.bar_ms)
    rows = []
    before = np.zeros(3)  # fill totals up to the current window's start
    for (a, b, c, d), (params, is_obj) in zip(wins, chosen, strict=True):
        # the run cut at d fills exactly as the full one on candles < d (the engine is causal)
        upto = res if d == end else run(candles.slice(0, d), entries[:d], exits[:d], settings=pinned)
        totals = _fill_totals(upto)
        m = _window_metrics(res, c, d, totals - before)
        before = totals
        rows.append({"is_start": a, "is_end": b, "oos_start": c, "oos_end": d,
                     "is_start_ts": candles["ts"][a], "oos_start_ts": candles["ts"][c],
                     "params": str(params), "is_objective": is_obj,
                     "oos_objective": float(m[objective]), "oos_final_equity": float(res.equity_array[d - 1])})  # fmt: skip
    wf = pl.DataFrame(rows)
    c0 = wins[0][2]
    oos_equity = pl.DataFrame({"ts": span["ts"].slice(c0), "equity": res.equity_array[c0:]})
    is_mean = float(np.nanmean(wf["is_objective"].to_numpy()))
    oos_mean = float(np.nanmean(wf["oos_objective"].to_numpy()))
    ratio = oos_mean / is_mean if is_mean != 0 else float("nan")
    return WalkForwardResult(wf, oos_equity, ratio, objective, res.trades)

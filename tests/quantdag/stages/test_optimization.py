"""The optimization stage on short histories: the grid shrinks to what fits, or the sweep is skipped."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.markets import Market
from quantdag.stages.optimization import SweepSkipped, run_sweep
from quantdag.store import Slice, Warehouse

M = Market("sim", "BTC/USDT", "1h")


def _store_candles(wh: Warehouse, n: int, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    frame = pl.DataFrame({
        "exchange": "sim", "symbol": M.symbol, "timeframe": M.timeframe,
        "ts": [start + timedelta(hours=i) for i in range(n)],
        "open": close, "high": close * 1.002, "low": close * 0.998, "close": close, "volume": np.full(n, 10.0),
        "filled": False,
    }).with_columns(pl.col("ts").dt.cast_time_unit("ms"))
    wh.replace_slices("market.candles", frame, [Slice(where=M.where, time_column=None)], order_by=("exchange", "symbol", "timeframe", "ts"))


def test_run_sweep_history_shorter_than_slowest_combination_sweeps_only_those_that_fit(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    _store_candles(wh, 150)
    out = run_sweep(wh, "sma_cross", M, min_trades=1)
    summary = out.result.summary()
    assert summary["search_space"]["dropped_too_long"] > 0
    assert out.result.results.height == summary["n_evaluated"] < 348


def test_run_sweep_history_too_short_for_any_combination_is_skipped_with_the_reason(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    _store_candles(wh, 12)
    with pytest.raises(SweepSkipped, match=r"BTC/USDT:1h.*too few"):
        run_sweep(wh, "sma_cross", M)

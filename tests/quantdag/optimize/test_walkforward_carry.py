"""Walk-forward trades like a live strategy: positions carry across windows, every exit pays costs.

The out-of-sample span is one backtest of the stitched winners' signals, so it must equal
:func:`quantdag.backtest.run` on those signals bit for bit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag.backtest import run
from quantdag.optimize import walk_forward, windows
from quantdag.strategies import create_strategy
from quantdag.strategies.base import Strategy, register, unregister
from quantdag.strategies.params import FloatParam


class LevelStrategy(Strategy):
    """Long while the close is above ``level``: a level signal, so it re-enters whenever flat."""

    name = "wf_level_test"
    level = FloatParam(50.0, low=0.0, high=1e6, description="price above which the strategy is long")

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        close = pl.col("close")
        return frame.with_columns(entry=close > self.level, exit=close < self.level)


@pytest.fixture(scope="module", autouse=True)
def level_strategy() -> Iterator[None]:
    register(LevelStrategy)
    yield
    unregister(LevelStrategy.name)


def _candles(close: np.ndarray) -> pl.DataFrame:
    """Hourly candles opening at the previous close (so a next-open fill is at that close)."""
    open_ = np.r_[close[0], close[:-1]]
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": [t0 + timedelta(hours=i) for i in range(close.shape[0])],
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": np.full(close.shape[0], 1_000.0),
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("ms"))


def _stitched(candles: pl.DataFrame, name: str, wf_windows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each window's winner's signals over its OOS candles (computed on candles up to its end)."""
    entries = np.zeros(candles.height, dtype=bool)
    exits = np.zeros(candles.height, dtype=bool)
    for row in wf_windows.iter_rows(named=True):
        c, d = row["oos_start"], row["oos_end"]
        sig = create_strategy(name, ast.literal_eval(row["params"])).signals(candles.slice(0, d))
        entries[c:d] = sig["entry"].to_numpy()[c:d]
        exits[c:d] = sig["exit"].to_numpy()[c:d]
    return entries, exits


def test_walk_forward_long_across_boundary_holds_one_trade():
    # rising prices, one combination: long from the first OOS candle to the end. The old code
    # flattened at the boundary (bar 39) for free and re-entered at bar 41 with fresh costs.
    candles = _candles(100.0 + np.arange(60.0))
    wf = walk_forward(candles, LevelStrategy.name, {"level": [50.0]}, train=20, test=20, min_trades=1,
                      objective="total_return")  # fmt: skip
    assert wf.windows["oos_start"].to_list() == [20, 40]
    eq = wf.oos_equity["equity"].to_numpy()  # bars 20..59
    close = candles["close"].to_numpy()[20:]
    units = (eq[2] - eq[1]) / (close[2] - close[1])
    assert units > 0
    # from the entry fill (bar 21) on, one constant position: every change of equity is units x
    # the change of close, across the window boundary too (no exit, no re-entry, no fee)
    np.testing.assert_allclose(np.diff(eq[1:]), units * np.diff(close[1:]), rtol=1e-9)
    trades = wf.oos_trades
    assert trades.height == 1
    assert trades["entry_bar"][0] == 21 and trades["is_open"][0]
    assert trades["size"][0] == pytest.approx(units, rel=1e-9)


def test_walk_forward_boundary_exit_pays_costs_like_run():
    # window 0 picks level 50 (long at its end, bar 39); window 1 picks level 125, whose exit fires
    # on bar 40: the carried long is sold at bar 41's open with fee and slippage.
    i = np.arange(60.0)
    close = np.where(i < 30, 100.0 + i, np.where(i < 40, 129.0 - 2.5 * (i - 29), 104.0 - 0.5 * (i - 39)))
    candles = _candles(close)
    wf = walk_forward(candles, LevelStrategy.name, {"level": [50.0, 125.0]}, train=20, test=20, min_trades=1,
                      objective="total_return")  # fmt: skip
    assert [ast.literal_eval(p)["level"] for p in wf.windows["params"]] == [50.0, 125.0]
    entries, exits = _stitched(candles, LevelStrategy.name, wf.windows)
    ref = run(candles, entries, exits)  # default costs: 10 bps fee, 5 bps slippage, next open
    assert wf.oos_equity["equity"].to_list() == ref.equity_array[20:].tolist()  # bit-identical
    assert wf.oos_equity["ts"].to_list() == candles["ts"][20:].to_list()
    assert wf.oos_trades.equals(ref.trades)
    trade = wf.oos_trades.row(0, named=True)
    assert wf.oos_trades.height == 1
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"], trade["is_open"]) == (21, 41, "signal", False)
    exit_fee = trade["size"] * trade["exit_price"] * 0.001
    entry_fee = trade["size"] * trade["entry_price"] * 0.001
    assert trade["fees"] == pytest.approx(entry_fee + exit_fee, rel=1e-12)
    assert trade["exit_price"] == pytest.approx(close[40] * (1 - 0.0005), rel=1e-12)  # slipped sell at bar 41's open
    # per-window objectives come from that one run's equity
    eq = ref.equity_array
    assert wf.windows["oos_objective"].to_list() == pytest.approx([eq[39] / eq[19] - 1, eq[59] / eq[39] - 1], rel=1e-12)
    assert wf.windows["oos_final_equity"].to_list() == [eq[39], eq[59]]


def test_walk_forward_real_data_equals_single_run_and_is_causal():
    candles = load_real_candles("kraken", "BTC_USDT", "1h").head(1500)
    grid = {"fast": [5, 10, 20], "slow": [30, 60]}
    wf = walk_forward(candles, "sma_cross", grid, train=600, test=300, min_trades=0)
    wins = windows(candles.height, 600, 300)
    entries, exits = _stitched(candles, "sma_cross", wf.windows)
    ref = run(candles, entries, exits)
    assert wf.oos_equity["equity"].to_list() == ref.equity_array[600:].tolist()
    assert wf.oos_trades.equals(ref.trades)
    # each window's sharpe from its slice of the one run, its first return against the equity
    # it inherited
    eq = ref.equity_array
    for (_, _, c, d), got in zip(wins, wf.windows["oos_objective"].to_list(), strict=True):
        r = eq[c:d] / eq[c - 1 : d - 1] - 1
        assert got == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(24 * 365), rel=1e-9)
    # fees per window are those of its own fills: they add up to the run's
    fees = walk_forward(candles, "sma_cross", grid, train=600, test=300, min_trades=0, objective="fees_paid")
    assert sum(fees.windows["oos_objective"]) == pytest.approx(fees.oos_trades["fees"].sum(), rel=1e-12)
    # causal: changing every candle after window 0's end leaves window 0 untouched
    c0, d0 = wins[0][2], wins[0][3]
    later = pl.arange(0, candles.height, eager=True) >= d0
    scaled = candles.with_columns(pl.when(later).then(pl.col(p) * 1.3).otherwise(pl.col(p)).alias(p)
                                  for p in ("open", "high", "low", "close"))  # fmt: skip
    wf2 = walk_forward(scaled, "sma_cross", grid, train=600, test=300, min_trades=0)
    assert wf2.windows.row(0) == wf.windows.row(0)
    assert wf2.oos_equity["equity"][: d0 - c0].to_list() == wf.oos_equity["equity"][: d0 - c0].to_list()

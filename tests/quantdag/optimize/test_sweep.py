"""sweep == the single-backtest engine, constraints, and bad input before any work."""

from __future__ import annotations

import math
import random

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag.backtest import run
from quantdag.errors import ConfigurationError, DataError
from quantdag.optimize import METRICS, sweep
from quantdag.optimize.generic import run_strategy
from quantdag.strategies import create_strategy

REL = 1e-12


@pytest.fixture(scope="module")
def kraken() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h")


def _close(a: float, b: float, scale: float) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if a == b:
        return True
    # relative, with a floor for sums that cancel to ~0 (e.g. expectancy): ulps of their scale
    return abs(a - b) <= REL * max(abs(a), abs(b), scale)


def _check_rows(candles: pl.DataFrame, table: pl.DataFrame, name: str, keys: list[str], **settings) -> int:
    checked = 0
    for row in table.iter_rows(named=True):
        params = {k: row[k] for k in keys}
        if name in ("sma_cross", "ema_cross"):
            sig = create_strategy(name, params).signals(candles)
            res = run(candles, sig["entry"], sig["exit"], **settings)
        else:
            res = run_strategy(candles, create_strategy(name, params), __import__("quantdag.backtest", fromlist=["x"]).BacktestSettings(**settings))
        m = res.metrics
        assert row["final_equity"] == res.final_equity, params  # bit-identical
        assert row["n_trades"] == m["n_trades"]
        for k in METRICS:
            scale = 1e-9 * m["init_cash"] if k in ("expectancy", "total_pnl") else 1e-15
            assert _close(row[k], m[k], scale), (params, k, row[k], m[k])
        checked += 1
    return checked


@pytest.mark.parametrize("settings", [{}, {"fill": "close", "fee": 0.001, "slippage": 0.0}], ids=["default", "close"])
def test_sma_sweep_equals_engine_on_sampled_combos(kraken, settings):
    grid = {"fast": list(range(2, 60, 3)), "slow": list(range(10, 300, 7))}
    table = sweep(kraken, "sma_cross", grid, **settings)
    assert table.height == sum(1 for f in grid["fast"] for s in grid["slow"] if f < s)
    rows = random.Random(3).sample(range(table.height), 25)
    assert _check_rows(kraken, table[rows], "sma_cross", ["fast", "slow"], **settings) == 25
    assert (table["fast"] < table["slow"]).all()


@pytest.mark.parametrize(
    "settings",
    [
        {"direction": "short"},
        {"sizing": "fixed_fraction", "size": 0.5, "slippage_model": "volatility"},
        {"sizing": "target_vol", "target_vol": 0.5, "fill": "close"},
    ],
    ids=["short", "fraction-volslip", "target-vol"],
)
def test_kernel_other_settings_equal_engine(kraken, settings):
    table = sweep(kraken, "sma_cross", {"fast": [3, 8, 21], "slow": [30, 55, 120]}, engine="kernel", **settings)
    assert _check_rows(kraken, table, "sma_cross", ["fast", "slow"], **settings) == 9


def test_ema_cross_and_ma_type_grid(kraken):
    table = sweep(kraken, "sma_cross", {"fast": [5, 12], "slow": [26, 80], "ma_type": ["sma", "ema"]})
    assert table.height == 8 and set(table["ma_type"]) == {"sma", "ema"}
    _check_rows(kraken, table, "sma_cross", ["fast", "slow", "ma_type"])


def test_long_binance_minute_candles():
    c = load_real_candles("binanceus", "BTC_USDT", "1m")
    table = sweep(c, "sma_cross", {"fast": [5, 30], "slow": [60, 240]}, fill="close", fee=0.001, slippage=0.0)
    _check_rows(c, table, "sma_cross", ["fast", "slow"], fill="close", fee=0.001, slippage=0.0)


def test_generic_engine_sweep_of_rsi_equals_single_runs(kraken):
    grid = {"period": [7, 14], "oversold": [25.0, 30.0], "overbought": [70.0, 75.0]}
    table = sweep(kraken, "rsi", grid, n_jobs=1)
    assert table.height == 8
    _check_rows(kraken, table, "rsi", ["period", "oversold", "overbought"])


def test_generic_path_in_worker_processes_matches_in_process(kraken):
    grid = {"period": [7, 14, 21], "oversold": [25.0, 30.0]}
    a = sweep(kraken, "rsi", grid, n_jobs=1)
    b = sweep(kraken, "rsi", grid, n_jobs=2)
    assert a.equals(b)


def test_stops_use_generic_engine_and_agree(kraken):
    kw = {"stop_loss": 0.03, "take_profit": 0.08}
    table = sweep(kraken, "sma_cross", {"fast": [5, 10], "slow": [40]}, n_jobs=1, **kw)
    _check_rows(kraken, table, "sma_cross", ["fast", "slow"], **kw)


def test_constraint_filtering_and_columns(kraken):
    table = sweep(kraken, "sma_cross", {"fast": [10, 20, 30], "slow": [20, 25]})
    assert sorted(zip(table["fast"], table["slow"])) == [(10, 20), (10, 25), (20, 25)]
    assert table.columns[:5] == ["fast", "slow", "ma_type", "final_equity", "n_trades"]
    assert set(METRICS) <= set(table.columns)


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ({}, "grid is empty"),
        ({"fast": []}, "'fast' is empty"),
        ({"fast": [50, 60], "slow": [10, 20]}, "no combination .*fast < slow"),
        ({"fast": [5], "slowness": [10]}, "slowness"),
        ({"fast": [0], "slow": [10]}, "fast"),
    ],
)
def test_bad_grids_raise_before_work(kraken, grid, match, monkeypatch):
    import quantdag.optimize.grid as g

    monkeypatch.setattr(g, "_cross_sweep", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(ConfigurationError, match=match):
        sweep(kraken, "sma_cross", grid)


def test_bad_settings_and_strategy(kraken):
    with pytest.raises(ConfigurationError, match="fil"):
        sweep(kraken, "sma_cross", {"fast": [5]}, fil="close")
    with pytest.raises(ConfigurationError, match="fee"):
        sweep(kraken, "sma_cross", {"fast": [5]}, fee=2.0)
    with pytest.raises(ConfigurationError, match="nope"):
        sweep(kraken, "nope", {"fast": [5]})


def test_too_few_candles(kraken):
    with pytest.raises(DataError, match="too few .*slow.: 500"):
        sweep(kraken.head(300), "sma_cross", {"fast": [5], "slow": [50, 500]})


def test_no_combos_by_candles_matrix():
    """The kernel allocates per-combination scalars only: its output is (combos, N_OUT)."""
    from quantdag.optimize import nb as onb

    n = 1000
    close = np.linspace(100.0, 120.0, n) + np.sin(np.arange(n) / 5.0)
    ma = np.vstack([close, close])
    out = onb.cross_sweep_nb(close, close, close, close, ma, np.array([0]), np.array([1]), False, 0, 0, np.ones(1),
                             0.0, 0.0, 1e4, 0.001, 1.0, np.array([0]))  # fmt: skip
    assert out.shape == (1, onb.N_OUT)


@pytest.mark.parametrize(("m", "threads"), [(1, 2), (7, 2), (8151, 2), (10, 3), (5, 8), (4, 1)])
def test_thread_order_is_a_permutation_dealt_round_robin(m, threads):
    from quantdag.optimize import nb as onb

    order = onb.thread_order(m, threads)
    assert sorted(order.tolist()) == list(range(m))
    first = order[: len(range(0, m, threads))]
    assert (first % threads == 0).all()  # the first stretch holds every threads-th combination


@pytest.mark.parametrize("source", ["kraken", "random"])
def test_sma_rows_nb_is_bit_identical_to_talib(kraken, source):
    """The sweep's parallel SMA must equal the strategy's TA-Lib SMA to the last bit, or a
    crossing could flip between the sweep and the single backtest."""
    from quantdag import indicators as ind
    from quantdag.optimize import nb as onb

    if source == "kraken":
        close = kraken["close"].to_numpy().astype(np.float64)
    else:
        close = 100.0 * np.exp(np.cumsum(np.random.default_rng(5).normal(0.0, 0.02, 3000)))
    periods = np.array([1, 2, 3, 5, 10, 21, 50, 99, 200, 377, close.shape[0], close.shape[0] + 5], dtype=np.int64)
    out = np.empty((periods.shape[0], close.shape[0]))
    onb.sma_rows_nb(close, periods, out)
    for row, p in zip(out, periods, strict=True):
        np.testing.assert_array_equal(row, ind.sma(close, int(p)), err_msg=f"period {p}")


@pytest.mark.parametrize("direction", ["long", "short"])
def test_drawdown_and_its_duration_are_exact_through_chunked_marking(kraken, direction):
    """In-position candles are marked 16 at a time (a vectorised chunk) and the peak and
    drawdown settled per chunk from its extreme equity; that must give exactly the engine's
    per-candle max drawdown and duration, on long trends (new peaks inside chunks) and deep
    losses (new drawdown records inside chunks)."""
    grid = {"fast": [3, 8, 21, 50], "slow": [30, 55, 120, 240]}
    table = sweep(kraken, "sma_cross", grid, direction=direction, engine="kernel")
    for row in table.iter_rows(named=True):
        sig = create_strategy("sma_cross", {"fast": row["fast"], "slow": row["slow"]}).signals(kraken)
        m = run(kraken, sig["entry"], sig["exit"], direction=direction).metrics
        assert row["final_equity"] == m["final_equity"]
        assert row["max_drawdown"] == m["max_drawdown"], (row["fast"], row["slow"])
        assert row["max_drawdown_duration_bars"] == m["max_drawdown_duration_bars"], (row["fast"], row["slow"])


def test_sweep_loads_and_validates_the_candles_once(kraken, monkeypatch):
    import quantdag.optimize.grid as g

    calls = []
    real = g.load_market
    monkeypatch.setattr(g, "load_market", lambda c: calls.append(c.height) or real(c))
    table = sweep(kraken, "sma_cross", {"fast": [5, 10], "slow": [20, 30]})
    assert table.height == 4
    assert calls == [kraken.height]


def test_kernel_counts_size_rejections_as_the_engine(kraken):
    """Crossings inside the volatility look-back size to nothing: the kernel counts them as
    the engine does (``rejected_size_zero``), and every other metric still agrees."""
    s = {"sizing": "target_vol", "target_vol": 0.5, "vol_window": 400}
    table = sweep(kraken, "sma_cross", {"fast": [3, 5], "slow": [10, 20]}, engine="kernel", **s)
    assert (table["rejected_size_zero"] > 0).all()
    assert (table["n_rejected"] == table["rejected_size_zero"]).all()
    assert _check_rows(kraken, table, "sma_cross", ["fast", "slow"], **s) == 4


def test_kernel_counts_no_cash_rejections_as_the_engine():
    """A short through a fourfold rally leaves the account below zero: later entries are
    refused for want of cash, in the kernel as in the engine."""
    t = np.arange(900)
    close = np.interp(t, [0, 300, 400, 900], [100.0, 100.0, 400.0, 400.0]) * (1.0 + 0.03 * np.sin(t / 3.0))
    c = pl.DataFrame({"ts": t * 3_600_000, "open": close, "high": close * 1.001, "low": close * 0.999,
                      "close": close, "volume": np.full(900, 1e6)})  # fmt: skip
    table = sweep(c, "sma_cross", {"fast": [3, 5], "slow": [10, 12]}, engine="kernel", direction="short")
    assert (table["rejected_no_cash"] > 0).all() and (table["final_equity"] < 0).all()
    assert _check_rows(c, table, "sma_cross", ["fast", "slow"], direction="short") == 4
    generic = sweep(c, "sma_cross", {"fast": [3, 5], "slow": [10, 12]}, engine="generic", direction="short", n_jobs=1)
    counts = ["n_trades", "n_rejected", "rejected_size_zero", "rejected_no_cash", "rejected_volume_cap",
              "n_capped_fills"]  # fmt: skip
    assert generic.select(counts).equals(table.select(counts))


def test_rejection_metrics_are_minimised():
    from quantdag.optimize.grid import MINIMISE

    assert {"n_rejected", "rejected_size_zero", "rejected_no_cash", "rejected_volume_cap", "n_capped_fills"} <= MINIMISE

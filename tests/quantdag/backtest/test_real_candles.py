"""Realistic runs on real exchange candles: an SMA crossover through the strategy registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import load_real_candles

from quantdag.backtest import enums, run, slippage_rates
from quantdag.strategies.ma_cross import SmaCross

from .reference import simulate


@pytest.fixture(scope="module")
def kraken_1h():
    return load_real_candles("kraken", "BTC_USDT", "1h")


@pytest.fixture(scope="module")
def sma_signals(kraken_1h):
    return SmaCross(fast=10, slow=50).signals(kraken_1h)


def test_run_sma_cross_on_kraken_is_sane(kraken_1h, sma_signals):
    res = run(kraken_1h, sma_signals["entry"], sma_signals["exit"])
    m = res.metrics
    eq = res.equity
    assert res.trades.height > 5 and m["fees_paid"] > 0 and m["slippage_paid"] > 0
    assert (eq["equity"] > 0).all() and (eq["cash"] >= -1e-9).all()  # long-only, no leverage
    assert (eq["position"] >= 0).all()
    t = res.trades
    assert (t["exit_ts"] > t["entry_ts"]).all()  # next-open fills: never in and out in one candle
    assert (t["exit_reason"].is_in(["signal", "end_of_data"])).all()
    assert res.final_equity - 10_000 == pytest.approx(t["pnl"].sum(), rel=1e-9)
    assert m["periods_per_year"] == pytest.approx(8760.0)
    for key in ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor"):
        assert math.isfinite(m[key]), key
    # entries fill at the open after the crossover candle
    entry_bars = t["entry_bar"].to_numpy()
    signal_bars = np.flatnonzero(sma_signals["entry"].to_numpy())
    assert set(entry_bars - 1) <= set(signal_bars)


def test_run_costs_lower_equity_than_costless_on_kraken(kraken_1h, sma_signals):
    costly = run(kraken_1h, sma_signals["entry"], sma_signals["exit"])
    free = run(kraken_1h, sma_signals["entry"], sma_signals["exit"], fee=0.0, slippage=0.0)
    assert costly.trades.height == free.trades.height
    assert costly.final_equity < free.final_equity


def test_run_kraken_every_setting_on_matches_reference(kraken_1h, sma_signals):
    res = run(
        kraken_1h, sma_signals["entry"], sma_signals["exit"], stop_loss=0.02, take_profit=0.06, trailing_stop=0.03,
        sizing="fixed_fraction", size=0.8, slippage_model="volatility", max_volume_share=0.05,
    )  # fmt: skip
    m = res.market
    z = np.zeros(m.close.shape[0], dtype=bool)
    expected = simulate(
        m.open,
        m.high,
        m.low,
        m.close,
        m.volume,
        sma_signals["entry"].to_numpy(),
        sma_signals["exit"].to_numpy(),
        z,
        z,
        np.zeros(0),
        np.full(m.close.shape[0], 0.8),
        slippage_rates(res.settings, m.high, m.low, m.close),
        mode=enums.MODE_SIGNALS,
        fill_code=enums.FILL_NEXT_OPEN,
        size_type=enums.SIZE_PERCENT,
        init_cash=10_000.0,
        fee=0.001,
        sl=0.02,
        tp=0.06,
        tsl=0.03,
        max_leverage=1.0,
        max_volume_share=0.05,
    )  # fmt: skip  (per-candle rates from the public helper: the paper broker's view of the same costs)
    assert res.final_equity == pytest.approx(expected["final_equity"], rel=1e-12)
    np.testing.assert_allclose(res.trade_records, expected["trades"], rtol=1e-12)
    assert set(res.trades["exit_reason"]) >= {"stop_loss", "trailing_stop", "signal"}


@pytest.mark.slow
def test_run_binanceus_1m_long_short_stops_is_consistent():
    c = load_real_candles("binanceus", "BTC_USDT", "1m")
    sig = SmaCross(fast=20, slow=120).signals(c)
    res = run(
        c, sig["entry"], sig["exit"], short_entries=sig["exit"], short_exits=sig["entry"], direction="both",
        stop_loss=0.01, trailing_stop=0.005,
    )  # fmt: skip
    t = res.trades
    assert c.height >= 30_000 and t.height > 50
    assert set(t["side"]) == {"long", "short"}
    assert res.final_equity - 10_000 == pytest.approx(t["pnl"].sum(), rel=1e-9)
    assert res.metrics["periods_per_year"] == pytest.approx(525_600.0)
    assert (t["is_open"].sum()) <= 1

"""RSI mean reversion ("rsi") on real Kraken candles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag import indicators as ind
from quantdag.errors import ConfigurationError
from quantdag.strategies import RsiReversion, get_strategy


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "15m")


def _cross_up(x: np.ndarray, level: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.r_[False, (x[1:] > level) & (x[:-1] <= level)]


@pytest.mark.parametrize(("period", "oversold", "overbought"), [(14, 30.0, 70.0), (7, 20.0, 80.0), (21, 35.0, 65.0)])
def test_rsi_entries_exactly_at_oversold_crossings(candles, period, oversold, overbought):
    out = RsiReversion(period=period, oversold=oversold, overbought=overbought).signals(candles)
    rsi = ind.rsi(candles["close"], period)
    expected_entry = _cross_up(rsi, oversold)
    assert np.array_equal(out["entry"].to_numpy(), expected_entry)
    assert np.array_equal(out["exit"].to_numpy(), _cross_up(rsi, overbought))
    assert expected_entry.sum() >= 10
    # an entry candle is the first one back above the line: the one before was at or below it
    rows = np.flatnonzero(expected_entry)
    assert (rsi[rows] > oversold).all() and (rsi[rows - 1] <= oversold).all()


def test_rsi_column_bounded_with_null_warm_up(candles):
    s = RsiReversion(period=14)
    out = s.signals(candles)
    assert out["rsi"].null_count() == 14
    assert out["rsi"].drop_nulls().is_between(0.0, 100.0).all()
    assert not out["entry"].head(15).any()  # first RSI at index 14; a crossing needs the candle before
    assert s.startup_candles == ind.wilder_settle(14) + 1  # converged, not just defined (test_warmup)


def test_rsi_exit_mid_adds_mid_crossings_to_exits(candles):
    plain = RsiReversion().signals(candles)
    mid = RsiReversion(exit_mid=True).signals(candles)
    rsi = ind.rsi(candles["close"], 14)
    expected = _cross_up(rsi, 70.0) | _cross_up(rsi, 50.0)
    assert np.array_equal(mid["exit"].to_numpy(), expected)
    assert mid["exit"].sum() > plain["exit"].sum()
    assert mid["entry"].equals(plain["entry"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"oversold": -1}, r"parameter 'oversold' must be in \[0, 100\], got -1"),
        ({"overbought": 100.5}, r"parameter 'overbought' must be in \[0, 100\], got 100.5"),
        ({"oversold": 70, "overbought": 30}, r"'oversold < overbought' violated by oversold=70.0, overbought=30.0"),
        ({"oversold": 50, "overbought": 50}, r"'oversold < overbought' violated by oversold=50.0, overbought=50.0"),
        ({"exit_mid": True, "oversold": 55, "overbought": 80}, r"'oversold < mid < overbought when exit_mid' violated"),
        ({"period": 1}, r"parameter 'period' must be in \[2, 500\], got 1"),
        ({"exit_mid": "yes"}, r"parameter 'exit_mid' must be true or false"),
        ({"threshold": 30}, r"unknown parameter 'threshold'"),
    ],
)
def test_rsi_invalid_params_rejected_naming_parameter(params, message):
    with pytest.raises(ConfigurationError, match=message):
        get_strategy("rsi").from_params(params)


def test_rsi_oversold_above_mid_allowed_without_exit_mid():
    s = get_strategy("rsi")(oversold=55, overbought=80)
    assert (s.oversold, s.exit_mid) == (55.0, False)

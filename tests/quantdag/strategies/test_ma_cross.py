"""Moving-average crossover ("sma_cross", "ema_cross") on real Kraken candles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag import indicators as ind
from quantdag.errors import ConfigurationError
from quantdag.strategies import EmaCross, SmaCross, get_strategy


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h")


def _crosses(fast: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference crossings: both averages defined on t and t-1, sign change between them."""
    with np.errstate(invalid="ignore"):
        up = np.r_[False, (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])]
        down = np.r_[False, (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])]
    return up, down


@pytest.mark.parametrize(("fast", "slow"), [(10, 50), (5, 20), (20, 100)])
def test_sma_cross_entries_exactly_where_fast_crosses_above_slow(candles, fast, slow):
    out = SmaCross(fast=fast, slow=slow).signals(candles)
    f, s = ind.sma(candles["close"], fast), ind.sma(candles["close"], slow)
    up, down = _crosses(f, s)
    assert np.array_equal(out["entry"].to_numpy(), up)
    assert np.array_equal(out["exit"].to_numpy(), down)
    assert up.sum() >= 5
    np.testing.assert_array_equal(out["fast_ma"].to_numpy(), f)  # null warm-up reads back as NaN


def test_sma_cross_no_signal_before_slow_average_and_previous_bar_exist(candles):
    s = SmaCross(fast=10, slow=50)
    out = s.signals(candles)
    assert s.startup_candles == 50
    assert out["slow_ma"].null_count() == 49
    assert not (out["entry"] | out["exit"]).head(50).any()


def test_sma_cross_entries_and_exits_alternate(candles):
    out = SmaCross(fast=10, slow=50).signals(candles)
    events = out.filter(pl.col("entry") | pl.col("exit"))
    kinds = events["entry"].to_list()
    assert not (events["entry"] & events["exit"]).any()
    assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False))


def test_ema_cross_defaults_to_ema_and_matches_indicator(candles):
    s = get_strategy("ema_cross")(fast=12, slow=26)
    assert isinstance(s, EmaCross) and s.ma_type == "ema"
    out = s.signals(candles)
    np.testing.assert_array_equal(out["slow_ma"].to_numpy(), ind.ema(candles["close"], 26))
    up, _ = _crosses(ind.ema(candles["close"], 12), ind.ema(candles["close"], 26))
    assert np.array_equal(out["entry"].to_numpy(), up)


def test_sma_cross_with_ema_type_equals_ema_cross(candles):
    a = SmaCross(fast=8, slow=30, ma_type="ema").signals(candles)
    b = EmaCross(fast=8, slow=30).signals(candles)
    assert a.equals(b)


def test_sma_cross_on_5m_candles_with_gaps_signals_per_row(candles):
    five = load_real_candles("kraken", "BTC_USDT", "5m")  # 975 missing candles in this file
    out = SmaCross(fast=12, slow=48).signals(five)
    up, _ = _crosses(ind.sma(five["close"], 12), ind.sma(five["close"], 48))
    assert out.height == five.height and np.array_equal(out["entry"].to_numpy(), up)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 50, "slow": 10}, r"constraint 'fast < slow' violated by fast=50, slow=10"),
        ({"fast": 20, "slow": 20}, r"constraint 'fast < slow' violated by fast=20, slow=20"),
        ({"fast": 0}, r"parameter 'fast' must be in \[1, 1000\], got 0"),
        ({"slow": 10.5}, r"parameter 'slow' must be an integer, got 10.5"),
        ({"ma_type": "wma"}, r"parameter 'ma_type' must be one of \['sma', 'ema'\], got 'wma'"),
        ({"period": 14}, r"unknown parameter 'period'"),
    ],
)
def test_sma_cross_invalid_params_rejected_naming_parameter(params, message):
    with pytest.raises(ConfigurationError, match=message):
        get_strategy("sma_cross").from_params(params)

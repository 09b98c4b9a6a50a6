"""MACD signal-line crossover ("macd") on real Kraken candles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag import indicators as ind
from quantdag.errors import ConfigurationError
from quantdag.strategies import MacdCross, get_strategy


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USD", "1h")


def test_macd_entries_exactly_at_signal_line_cross_up(candles):
    out = MacdCross().signals(candles)
    line, signal, _ = ind.macd(candles["close"], 12, 26, 9)
    with np.errstate(invalid="ignore"):
        up = np.r_[False, (line[1:] > signal[1:]) & (line[:-1] <= signal[:-1])]
        down = np.r_[False, (line[1:] < signal[1:]) & (line[:-1] >= signal[:-1])]
    assert np.array_equal(out["entry"].to_numpy(), up)
    assert np.array_equal(out["exit"].to_numpy(), down)
    assert up.sum() >= 20


def test_macd_no_signal_during_warm_up(candles):
    s = MacdCross(fast=8, slow=30, signal=7)
    out = s.signals(candles)
    first = out["macd_hist"].null_count()
    assert first == 30 + 7 - 2  # TA-Lib's first value; a cross needs the candle before
    assert not (out["entry"] | out["exit"]).head(first + 1).any()
    # the declared warm-up is the EMAs' convergence, not their first value (test_warmup)
    assert s.startup_candles == ind.macd_settle(30, 7) + 1 > first + 1


def test_macd_hist_filter_requires_histogram_past_band(candles):
    h = 0.001
    plain = MacdCross().signals(candles)
    filtered = MacdCross(hist_threshold=h).signals(candles)
    rel = (filtered["macd_hist"] / candles["close"]).to_numpy()
    np.testing.assert_allclose(filtered["macd_hist_rel"].to_numpy(), rel)
    rows = np.flatnonzero(filtered["entry"].to_numpy())
    assert len(rows) > 0
    assert (rel[rows] > h).all() and (rel[rows - 1] <= h).all()
    exits = np.flatnonzero(filtered["exit"].to_numpy())
    assert (rel[exits] < -h).all() and (rel[exits - 1] >= -h).all()
    assert filtered["entry"].sum() < plain["entry"].sum()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 26, "slow": 12}, r"'fast < slow' violated by fast=26, slow=12"),
        ({"hist_threshold": -0.001}, r"parameter 'hist_threshold' must be in \[0, 0.05\], got -0.001"),
        ({"signal": 0}, r"parameter 'signal' must be in \[1, 500\], got 0"),
    ],
)
def test_macd_invalid_params_rejected_naming_parameter(params, message):
    with pytest.raises(ConfigurationError, match=message):
        get_strategy("macd").from_params(params)

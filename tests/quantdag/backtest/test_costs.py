"""The cost model the paper broker shares with the backtest."""

from __future__ import annotations

import numpy as np
import pytest

from quantdag.backtest import BacktestSettings, fill, run, slippage_rate, slippage_rates
from quantdag.errors import ConfigurationError, DataError

from .helpers import candles, flags


def test_fill_buy_pays_slipped_price_plus_fee():
    f = fill(100.0, 2.0, "buy", fee=0.001, slippage=0.0005)
    assert f.price == pytest.approx(100.05)
    assert f.fee == pytest.approx(2 * 100.05 * 0.001)
    assert f.slippage_cost == pytest.approx(2 * 100 * 0.0005)
    assert f.cash_delta == pytest.approx(-(2 * 100.05) * 1.001)


def test_fill_sell_receives_slipped_price_less_fee():
    f = fill(100.0, 2.0, "sell", fee=0.001, slippage=0.0005)
    assert f.price == pytest.approx(99.95)
    assert f.cash_delta == pytest.approx(2 * 99.95 * 0.999)


def test_fill_matches_backtest_entry_to_the_bit():
    res = run(candles([100.0, 101.0, 102.0, 103.0]), flags(4, 0), flags(4, 2))
    t = res.trades.row(0, named=True)
    f = fill(101.0, t["size"], "buy", fee=0.001, slippage=0.0005)
    assert f.price == t["entry_price"] or f.price == pytest.approx(t["entry_price"], rel=1e-15)
    assert res.equity["cash"][1] == 10_000.0 + f.cash_delta


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((100.0, 1.0, "hold"), ConfigurationError, "side must be 'buy' or 'sell', got 'hold'"),
        ((-1.0, 1.0, "buy"), DataError, "ref_price must be a finite price > 0, got -1.0"),
        ((100.0, 0.0, "buy"), DataError, "qty must be a finite quantity > 0, got 0.0"),
    ],
)
def test_fill_bad_arguments_raise_typed_errors(args, error, message):
    with pytest.raises(error, match=message):
        fill(*args, fee=0.001, slippage=0.0)


def test_slippage_rates_fixed_and_volatility_models():
    h, lo, c = np.array([110.0, 100.0]), np.array([90.0, 100.0]), np.array([100.0, 100.0])
    np.testing.assert_array_equal(slippage_rates(BacktestSettings(slippage=0.001), h, lo, c), [0.001, 0.001])
    vol = BacktestSettings(slippage=0.001, slippage_model="volatility", slippage_vol_factor=0.5)
    np.testing.assert_allclose(slippage_rates(vol, h, lo, c), [0.001 + 0.5 * 0.2, 0.001])
    assert slippage_rate(vol, 110.0, 90.0, 100.0) == pytest.approx(0.101)

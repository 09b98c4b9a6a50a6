"""Bad input never yields a silent result: a typed error that names the offending value."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from quantdag.backtest import BacktestSettings, run, run_targets
from quantdag.errors import ConfigurationError, DataError

from .helpers import candles, flags

PRICES = [100.0, 101.0, 102.0, 104.0, 108.0, 107.0]


def good() -> pl.DataFrame:
    return candles(PRICES)


def test_run_misaligned_signal_length_raises_data_error_naming_lengths():
    with pytest.raises(DataError, match=r"entries has shape \(5,\) but candles have 6 rows"):
        run(good(), flags(5, 1), flags(6, 3))


def test_run_non_boolean_signals_raise_data_error_naming_dtype():
    with pytest.raises(DataError, match="exits must be boolean, got dtype int64"):
        run(good(), flags(6, 1), np.zeros(6, dtype=np.int64))
    with pytest.raises(DataError, match="entries must be boolean, got a Float64 series"):
        run(good(), pl.Series([0.0] * 6), flags(6))


def test_run_null_signal_raises_data_error():
    with pytest.raises(DataError, match="entries has 1 null"):
        run(good(), pl.Series([True, None, False, False, False, False]), flags(6))


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
def test_run_nan_price_raises_data_error_naming_column_and_ts(column):
    c = good().with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(float("nan")).otherwise(pl.col(column)).alias(column)
    )
    with pytest.raises(DataError, match=rf"column '{column}' has NaN/infinite value nan at ts=2024-01-01 03:00"):
        run(c, flags(6, 1), flags(6, 3))


def test_run_null_price_raises_data_error():
    c = good().with_columns(pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("close")).alias("close"))
    with pytest.raises(DataError, match="column 'close' has null value"):
        run(c, flags(6, 1), flags(6, 3))


def test_run_negative_price_raises_data_error_naming_value():
    c = candles([100, 101, -5, 104, 108, 107], low=[100, 101, -5, 104, 108, 107])
    with pytest.raises(DataError, match=r"column 'open' has non-positive price -5.0 at ts=2024-01-01 02:00"):
        run(c, flags(6, 1), flags(6, 3))


def test_run_negative_volume_raises_data_error():
    c = candles(PRICES, volume=[1, 1, 1, -2, 1, 1])
    with pytest.raises(DataError, match="column 'volume' has negative volume -2.0"):
        run(c, flags(6, 1), flags(6, 3))


def test_run_non_monotonic_time_raises_data_error_naming_row():
    c = good()
    c = c.with_columns(pl.when(pl.int_range(pl.len()) == 4).then(c["ts"][2]).otherwise(pl.col("ts")).alias("ts"))
    with pytest.raises(DataError, match=r"'ts' must be strictly increasing; row 4"):
        run(c, flags(6, 1), flags(6, 3))


def test_run_high_below_close_raises_data_error():
    c = candles(PRICES, high=[100, 101, 101, 104, 108, 107])
    with pytest.raises(DataError, match=r"high/low that do not bracket open/close: open=102.0 high=101.0"):
        run(c, flags(6, 1), flags(6, 3))


def test_run_missing_column_and_wrong_type_raise_data_error():
    with pytest.raises(DataError, match=r"lack column\(s\) \['volume'\]"):
        run(good().drop("volume"), flags(6, 1), flags(6, 3))
    with pytest.raises(DataError, match="must be a polars DataFrame, got dict"):
        run({"ts": []}, flags(6, 1), flags(6, 3))
    with pytest.raises(DataError, match="at least 2 rows"):
        run(candles([100.0]), flags(1), flags(1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fee": 1.5}, r"fee must be in \[0.0, 1.0\), got 1.5"),
        ({"fee": -0.001}, r"fee must be in \[0.0, 1.0\), got -0.001"),
        ({"slippage": float("nan")}, "slippage must not be NaN"),
        ({"fill": "tomorrow"}, "fill must be one of .* got 'tomorrow'"),
        ({"direction": "sideways"}, "direction must be one of .* got 'sideways'"),
        ({"sizing": "martingale"}, "sizing must be one of .* got 'martingale'"),
        ({"fill": ["close"]}, r"fill must be one of .* got \['close'\]"),  # unhashable: no TypeError
        ({"slippage_model": None}, "slippage_model must be one of .* got None"),
        ({"init_cash": 0}, "init_cash must be a finite number > 0, got 0"),
        ({"init_cash": math.inf}, "init_cash must be a finite number > 0, got inf"),
        ({"stop_loss": 0.0}, r"stop_loss must be in \(0.0, 1.0\), got 0.0"),
        ({"stop_loss": 1.2}, r"stop_loss must be in \(0.0, 1.0\), got 1.2"),
        ({"take_profit": -0.1}, "take_profit must be a finite number > 0, got -0.1"),
        ({"trailing_stop": 1.0}, r"trailing_stop must be in \(0.0, 1.0\), got 1.0"),
        ({"sizing": "fixed_fraction"}, "sizing='fixed_fraction' needs size"),
        (
            {"sizing": "fixed_fraction", "size": 1.5},
            r"size for fixed_fraction must be in \(0, max_leverage=1.0\], got 1.5",
        ),
        ({"sizing": "fixed_notional", "size": -5.0}, "size for fixed_notional must be a finite amount > 0, got -5.0"),
        ({"size": 0.5}, "size=0.5 is only read by fixed_fraction/fixed_notional sizing, not 'all_in'"),
        ({"sizing": "target_vol"}, "sizing='target_vol' needs target_vol"),
        ({"max_volume_share": 0.0}, r"max_volume_share must be in \(0.0, 1.0\], got 0.0"),
        ({"max_leverage": -1}, "max_leverage must be a finite number > 0, got -1"),
        ({"atr_period": 1}, "atr_period must be an integer >= 2, got 1"),
        ({"timeframe": "7x"}, "unknown timeframe '7x'"),
        ({"fee": "10bps"}, "fee must be a number, got '10bps'"),
        ({"colour": "red"}, r"unknown backtest setting\(s\) \['colour'\]"),
    ],
)
def test_run_impossible_settings_raise_configuration_error_naming_value(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        run(good(), flags(6, 1), flags(6, 3), **kwargs)


def test_backtest_settings_is_frozen_and_validated_on_construction():
    s = BacktestSettings()
    with pytest.raises(AttributeError):
        s.fee = 0.5  # type: ignore[misc]
    with pytest.raises(ConfigurationError, match="fee"):
        BacktestSettings(fee=2.0)


def test_run_target_out_of_range_and_infinite_raise_data_error():
    with pytest.raises(DataError, match=r"target\[1\] = 1.5 is outside \[0.0, 1.0\]"):
        run_targets(good(), [0, 1.5, 0, 0, 0, 0])
    with pytest.raises(DataError, match=r"target\[0\] = inf"):
        run_targets(good(), np.array([np.inf, 0, 0, 0, 0, 0]), direction="both")
    with pytest.raises(DataError, match="target has shape"):
        run_targets(good(), [0.5, 0.5])
    with pytest.raises(DataError, match="target must hold numbers or None"):
        run_targets(good(), ["a", 0, 0, 0, 0, 0])


def test_run_signals_and_target_together_raise_configuration_error():
    with pytest.raises(ConfigurationError, match="either target or entry/exit signals"):
        run(good(), flags(6, 1), target=[0.0] * 6)
    with pytest.raises(ConfigurationError, match="needs entries"):
        run(good())
    with pytest.raises(ConfigurationError, match="direction='both' needs short_entries"):
        run(good(), flags(6, 1), direction="both")


def test_load_market_returns_candle_arrays():
    from quantdag.backtest import CandleArrays, load_market

    c = load_market(good())
    assert isinstance(c, CandleArrays) and isinstance(run(good(), flags(6, 1)).market, CandleArrays)
    assert c.ts_ms.dtype == np.int64 and c.close.dtype == np.float64 and c.close.flags.c_contiguous
    np.testing.assert_array_equal(c.open, PRICES)

"""Pins quantdag.indicators: values on known cases, warm-up lengths, NaN -> null, argument checks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import talib

from quantdag import indicators as ta
from quantdag.errors import ConfigurationError

RAMP = np.arange(1.0, 61.0)  # 1, 2, ..., 60


def _warmup(values: np.ndarray) -> int:
    """Leading NaNs; asserts there are none after them."""
    n = int(np.argmax(~np.isnan(values)))
    assert not np.isnan(values[n:]).any()
    return n


def test_sma_known_values_and_warmup():
    out = ta.sma(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3)
    np.testing.assert_array_equal(out[2:], [2.0, 3.0, 4.0])
    assert np.isnan(out[:2]).all()


def test_ema_seeded_with_sma_then_recursive():
    out = ta.ema(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 10.0]), 3)  # alpha = 2 / (3 + 1) = 0.5
    np.testing.assert_allclose(out[2:], [2.0, 3.0, 4.0, 7.0])
    assert _warmup(out) == 2


def test_rsi_monotonic_series_hits_bounds():
    assert np.allclose(ta.rsi(RAMP, 14)[14:], 100.0)
    assert np.allclose(ta.rsi(RAMP[::-1], 14)[14:], 0.0)
    assert _warmup(ta.rsi(RAMP, 14)) == 14


def test_macd_histogram_is_line_minus_signal_after_33_candles():
    line, signal, hist = ta.macd(np.sin(RAMP / 5) + 10, 12, 26, 9)
    assert _warmup(line) == _warmup(signal) == _warmup(hist) == 33
    np.testing.assert_allclose(hist[33:], line[33:] - signal[33:], atol=1e-12)


def test_macd_on_a_ramp_is_the_constant_ema_lag_difference():
    # On a straight line an EMA lags by (period - 1) / 2 steps: 13 - 5.5 = 7 units.
    line, signal, _ = ta.macd(np.arange(1.0, 301.0), 12, 26, 9)
    np.testing.assert_allclose(line[-50:], 7.0, rtol=1e-6)
    np.testing.assert_allclose(signal[-50:], 7.0, rtol=1e-6)


def test_bbands_middle_is_sma_and_width_is_population_std():
    close = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    upper, middle, lower = ta.bbands(close, 8, 2.0)
    assert middle[-1] == pytest.approx(5.0)
    assert upper[-1] - middle[-1] == pytest.approx(4.0)  # population std of the window is 2
    assert middle[-1] - lower[-1] == pytest.approx(4.0)


def test_atr_constant_range_without_gaps_equals_the_range():
    close = np.full(40, 100.0)
    assert np.allclose(ta.atr(close + 1, close - 1, close, 14)[14:], 2.0)


def test_adx_strong_trend_near_100_and_bounded():
    close = np.arange(100.0, 160.0)
    out = ta.adx(close + 0.5, close - 0.5, close, 14)
    assert _warmup(out) == 27
    assert out[-1] > 95 and (out[27:] <= 100).all()


def test_indicators_polars_null_becomes_nan_and_poisons_later_values():
    # TA-Lib keeps running sums, so one NaN spoils everything after it: feed gap-free candles.
    out = ta.sma(pl.Series([1.0, 2.0, None, 4.0, 5.0, 6.0]), 2)
    assert out[1] == pytest.approx(1.5)
    assert np.isnan(out[2:]).all()
    np.testing.assert_array_equal(ta.sma(pl.Series([1.0, 2.0, 3.0]), 2), ta.sma(np.array([1.0, 2.0, 3.0]), 2))


def test_indicators_match_talib_directly():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    high, low = close * 1.01, close * 0.99
    np.testing.assert_array_equal(ta.rsi(close, 14), talib.RSI(close, timeperiod=14))
    np.testing.assert_array_equal(ta.adx(high, low, close, 14), talib.ADX(high, low, close, timeperiod=14))
    np.testing.assert_array_equal(ta.atr(high, low, close, 14), talib.ATR(high, low, close, timeperiod=14))


def test_to_series_turns_nan_warmup_into_nulls():
    series = ta.to_series("sma_3", ta.sma(np.array([1.0, 2.0, 3.0, 4.0]), 3))
    assert series.name == "sma_3" and series.dtype == pl.Float64
    assert series.to_list() == [None, None, 2.0, 3.0]
    assert series.is_nan().sum() == 0


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (lambda: ta.sma(RAMP, 0), "0"),
        (lambda: ta.ema(RAMP, -3), "-3"),
        (lambda: ta.sma(RAMP, 2.5), "2.5"),
        (lambda: ta.sma(RAMP, True), "True"),
        (lambda: ta.rsi(RAMP, 1), "1"),
        (lambda: ta.atr(RAMP, RAMP, RAMP, 0), "0"),
        (lambda: ta.adx(RAMP, RAMP, RAMP, 1), "1"),
        (lambda: ta.bbands(RAMP, 1), "1"),
        (lambda: ta.bbands(RAMP, 20, 0.0), "0.0"),
        (lambda: ta.bbands(RAMP, 20, float("nan")), "nan"),
        (lambda: ta.macd(RAMP, 12, 26, 0), "0"),
    ],
)
def test_indicator_bad_period_raises_configuration_error_naming_value(call, shown):
    with pytest.raises(ConfigurationError, match=f"got {shown}"):
        call()


@pytest.mark.parametrize(("fast", "slow"), [(26, 12), (12, 12)])
def test_macd_fast_not_below_slow_raises(fast, slow):
    with pytest.raises(ConfigurationError, match=rf"fast \({fast}\) must be < slow \({slow}\)"):
        ta.macd(RAMP, fast, slow, 9)


# ---- configurable indicators: specs and the user-indicator registry ------------------------------


@pytest.fixture
def registered():
    names: list[str] = []
    yield names
    for n in names:
        ta.unregister_indicator(n)


def test_register_indicator_name_defaults_to_function_name(registered):
    @ta.register_indicator
    def my_thing(candles, window: int = 10):
        return candles["close"]

    registered.append("my_thing")
    ind = ta.get_indicator("my_thing")
    assert (ind.name, ind.func, ind.params, ind.required, ind.outputs) == ("my_thing", my_thing, ("window",), (), None)
    assert "my_thing" in ta.list_indicators()


def test_register_indicator_name_taken_by_another_function_raises(registered):
    def first(candles):
        return candles["close"]

    def second(candles):
        return candles["open"]

    ta.register_indicator(first, name="taken")
    registered.append("taken")
    ta.register_indicator(first, name="taken")  # the same function again (a re-imported file) is fine
    with pytest.raises(ConfigurationError, match="indicator name 'taken' is already registered by .*first"):
        ta.register_indicator(name="taken")(second)


@pytest.mark.parametrize(("name", "message"), [("sma", "TA-Lib's SMA in lower case"), ("MyThing", "lower-case identifier"), ("", "lower-case identifier")])
def test_register_indicator_bad_name_raises_naming_it(name, message):
    with pytest.raises(ConfigurationError, match=message):
        ta.register_indicator(name=name)(lambda candles: candles["close"])


def test_register_indicator_without_candles_argument_raises():
    with pytest.raises(ConfigurationError, match="first argument must be the candles frame"):
        ta.register_indicator(name="no_candles")(lambda *, window=3: None)


def test_indicator_spec_talib_casts_params_and_takes_talib_lookback():
    spec = ta.indicator_spec("BBANDS", columns={"upperband": "u"}, params={"timeperiod": 1000, "nbdevup": 2})
    assert dict(spec.params) == {"timeperiod": 1000, "nbdevup": 2.0} and isinstance(spec.params["nbdevup"], float)
    assert (spec.inputs, spec.outputs, spec.lookback_bars) == (("close",), (("upperband", "u"),), 999)
    assert ta.indicator_spec("SMA", column="s", lookback_bars=2000).lookback_bars == 2000


def test_indicator_spec_inputs_list_of_wrong_length_raises():
    with pytest.raises(ConfigurationError, match=r"inputs\.prices: needs 3 columns like \['high', 'low', 'close'\], got \['high', 'low'\]"):
        ta.indicator_spec("ATR", column="a", inputs={"prices": ["high", "low"]})


def test_indicator_spec_unregistered_user_indicator_defers_unless_resolving():
    assert ta.indicator_spec("not_yet_registered", column="x", resolve=False) is None
    with pytest.raises(ConfigurationError, match="function: 'not_yet_registered' is neither"):
        ta.indicator_spec("not_yet_registered", column="x")


def test_indicator_spec_user_indicator_missing_required_parameter_raises(registered):
    ta.register_indicator(name="needs_window")(lambda candles, window: candles["close"])
    registered.append("needs_window")
    with pytest.raises(ConfigurationError, match="params: needs_window needs parameter\\(s\\) window"):
        ta.indicator_spec("needs_window", column="x")

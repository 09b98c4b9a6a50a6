"""The warm-up (recursive) check: signals beyond the declared warm-up must not depend on the history start."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag import indicators as ind
from quantdag.errors import ConfigurationError
from quantdag.strategies import FloatParam, IntParam, RegimeMaCross, SmaCross, Strategy, create_strategy, position_state
from quantdag.strategies.warmup import check_warmup, default_starts

BUILT_INS = ("sma_cross", "ema_cross", "rsi", "macd", "regime_ma", "consensus")


class CumulativeDrift(Strategy):
    """Start-dependent: long while the close is above the mean of *every* candle so far (an expanding mean)."""

    name = "cumulative_drift"
    window = IntParam(10, low=2, high=100)

    @property
    def startup_candles(self) -> int:
        return self.window

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(mean=pl.col("close").cum_sum() / pl.int_range(1, pl.len() + 1))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        up = pl.col("close") > pl.col("mean")
        return frame.with_columns(entry=up, exit=~up)


class ShortWarmupEma(SmaCross):
    """ema_cross declaring only the EMA's first value as warm-up (what the built-in did before)."""

    name = "short_warmup_ema"

    @property
    def startup_candles(self) -> int:
        return self.slow


class CarriedRegime(RegimeMaCross):
    """regime_ma with its position carried from the first candle (no max_hold window): path-dependent."""

    name = "carried_regime"

    @property
    def startup_candles(self) -> int:
        return self.classifier.settled + 1  # indicators settled, but no bound on the position's age

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        out = super().compute_signals(frame)
        held = position_state(pl.col("entry"), pl.col("exit"))
        return out.with_columns(target=held.cast(pl.Float64) * pl.col("size"))


class EmaAboveLevel(Strategy):
    """Long while EMA-50 is above a fixed price level; converged warm-up declared."""

    name = "ema_above_level"
    level = FloatParam(1.0, low=0.0, high=1e7)

    @property
    def startup_candles(self) -> int:
        return ind.ema_settle(50) + 1

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(ind.to_series("ema", ind.ema(candles["close"], 50)))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        up = (pl.col("ema") > self.level).fill_null(False)
        return frame.with_columns(entry=up, exit=~up)


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h").head(1200)


@pytest.fixture(scope="module")
def long_candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h")  # 2160 candles: room for regime_ma's and consensus' warm-up


def test_rolling_strategy_passes_beyond_its_warmup(candles):
    report = check_warmup(create_strategy("sma_cross", {"fast": 10, "slow": 50}), candles)
    assert report.ok, report.summary()
    assert report.warmup == 50 and report.starts == tuple(default_starts(1200, 50))
    assert "OK: signals identical beyond the warm-up" in report.summary()


def test_start_dependent_strategy_fails_naming_column_and_candle(candles):
    report = check_warmup(CumulativeDrift(), candles, starts=[300])
    assert not report.ok
    (finding,) = report.differences
    start, diff = finding.start, finding.difference
    assert start == 300 and diff.column in ("entry", "exit", "mean") and diff.row >= 10
    assert finding.size > 1e-6 and not report.ties
    assert diff.ts == candles["ts"][300 + diff.row]
    text = report.summary()
    assert f"column {diff.column!r} at ts={diff.ts}" in text and "history from row 300" in text


def test_too_few_candles_is_a_configuration_error(candles):
    with pytest.raises(ConfigurationError, match="give at least 121 candles"):
        check_warmup(create_strategy("sma_cross", {"fast": 10, "slow": 50}), candles.head(100))


@pytest.mark.parametrize("name", BUILT_INS)
def test_built_in_strategy_signals_do_not_depend_on_history_start(name, long_candles):
    report = check_warmup(create_strategy(name), long_candles)
    assert report.ok, report.summary()
    assert len(report.starts) >= 4


def test_ema_warmup_covering_only_the_first_value_fails_on_the_indicator(long_candles):
    report = check_warmup(ShortWarmupEma(fast=10, slow=50, ma_type="ema"), long_candles)
    assert not report.ok and not report.ties
    first = report.differences[0]
    # the unconverged EMA differs by far more than the tolerance right after the declared warm-up
    assert first.difference.column in ("fast_ma", "slow_ma", "entry", "exit") and first.size > 1e-6
    assert "declare a longer startup_candles" in report.summary()


def test_position_carried_from_before_the_warmup_fails_and_is_not_taken_for_a_tie(long_candles):
    report = check_warmup(CarriedRegime(), long_candles, starts=[331])  # an up-trend entered before row 331 + 285
    assert not report.ok and not report.ties, report.summary()
    (finding,) = report.differences
    # settled indicators, yet the position differs: state carried from before the warm-up
    assert finding.difference.column == "target" and finding.difference.row == 285 and finding.size < 1e-6


def test_crossing_decided_below_the_tolerance_is_a_tie_warning_not_a_failure(long_candles):
    close, start = long_candles["close"].to_numpy(), 300
    warm = EmaAboveLevel().startup_candles
    full, part = ind.ema(close, 50)[start + warm], ind.ema(close[start:], 50)[warm]
    assert 0 < abs(full - part) < 1e-9 * full  # converged: float noise only
    report = check_warmup(EmaAboveLevel(level=(full + part) / 2), long_candles, starts=[start])
    assert report.ok, report.summary()
    (tie,) = report.ties
    assert tie.difference.column == "entry" and tie.difference.row == warm and 0 < tie.size < 1e-9
    assert "warning (tie)" in report.summary() and "1 tie(s)" in report.summary()


def test_settle_candles_bound_the_start_up_error_below_the_tolerance(long_candles):
    close = long_candles["close"].to_numpy()
    for period in (10, 50):
        k = ind.ema_settle(period)
        gaps = [np.nanmax(np.abs(ind.ema(close, period)[s + k :] - ind.ema(close[s:], period)[k:])) for s in (1, 400, 900)]
        assert max(gaps) < ind.SETTLE_RTOL * close.max()
    assert ind.ema_settle(50) > 4 * 50  # stricter than freqtrade's 4 x period rule of thumb (0.3 % error)
    assert ind.wilder_settle(14) > 14 * 13  # (13/14)^n < 1e-7 needs n > 217

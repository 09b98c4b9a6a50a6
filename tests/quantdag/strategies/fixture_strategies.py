"""Deliberately broken strategies the guards and the look-ahead check must catch.

None of them is registered, so the "every registered strategy" tests never see them; the CLI
tests load them as ``strategies.fixture_strategies:ClassName``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quantdag import indicators as ind
from quantdag.strategies import IntParam, RegimeMaCross, Strategy, create_strategy, crossed_above, crossed_below, less_than


class PeekNextClose(Strategy):
    """Look-ahead: enters when the *next* candle closes higher (shift(-1))."""

    name = "peek_next_close"

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        nxt = pl.col("close").shift(-1)
        return frame.with_columns(entry=nxt > pl.col("close"), exit=nxt < pl.col("close"))


class FullSampleZScore(Strategy):
    """Look-ahead: normalises price with the mean and std of the whole sample."""

    name = "full_sample_zscore"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        close = pl.col("close")
        return candles.with_columns(zscore=(close - close.mean()) / close.std())

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        z = pl.col("zscore")
        return frame.with_columns(entry=crossed_above(z, 0.0), exit=crossed_below(z, 0.0))


class CenteredMean(Strategy):
    """Subtle look-ahead: a centred rolling mean uses half a window of future candles."""

    name = "centered_mean"
    window = IntParam(5, low=3, high=101, description="centred window")

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(smooth=pl.col("close").rolling_mean(self.window, center=True))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            entry=crossed_above(pl.col("close"), pl.col("smooth")), exit=crossed_below(pl.col("close"), pl.col("smooth"))
        )


class _Flat(Strategy):
    """Base of the guard fixtures: never trades."""

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(entry=pl.lit(False), exit=pl.lit(False))


class AddsColumnInPlace(_Flat):
    """Mutates its input: inserts a column into the caller's frame."""

    name = "adds_column_in_place"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        candles.insert_column(candles.width, pl.Series("sneaky", [0.0] * candles.height))
        return candles


class OverwritesClose(_Flat):
    """Mutates its input: replaces the caller's close column with a smoothed one."""

    name = "overwrites_close"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        i = candles.get_column_index("close")
        candles.replace_column(i, candles["close"].rolling_mean(3).fill_null(strategy="backward"))
        return candles


class DropsVolume(_Flat):
    """Mutates its input: removes a column from the caller's frame."""

    name = "drops_volume"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        candles.drop_in_place("volume")
        return candles


class DropsWarmup(Strategy):
    """Returns fewer rows than it got (drops the warm-up nulls)."""

    name = "drops_warmup"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(ind.to_series("sma", ind.sma(candles["close"], 5))).drop_nulls()

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(entry=pl.lit(False), exit=pl.lit(False))


class IntegerSignals(Strategy):
    """Emits 0/1 integers instead of Booleans (freqtrade style)."""

    name = "integer_signals"

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(entry=pl.lit(1, dtype=pl.Int8), exit=pl.lit(0, dtype=pl.Int8))


class TargetTooLarge(_Flat):
    """Asks for 150 % of equity."""

    name = "target_too_large"

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        return super().compute_signals(frame).with_columns(target=pl.lit(1.5))


class Raises(_Flat):
    """Fails inside user code with a plain Python error."""

    name = "raises"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        raise ZeroDivisionError("division by zero in my indicator")


class SmaLongShort(Strategy):
    """Long above the slow SMA after a cross up, short after a cross down (a can_short member)."""

    name = "test_sma_long_short"
    can_short = True
    fast = IntParam(10, low=1, high=500)
    slow = IntParam(50, low=2, high=1000)
    constraints = (less_than("fast", "slow"),)

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        close = candles["close"]
        return candles.with_columns(
            ind.to_series("f", ind.sma(close, self.fast)), ind.to_series("s", ind.sma(close, self.slow))
        )

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        up, down = crossed_above(pl.col("f"), pl.col("s")), crossed_below(pl.col("f"), pl.col("s"))
        return frame.with_columns(entry=up, exit=down, short_entry=down, short_exit=up)


class FullSampleVolRegime(RegimeMaCross):
    """Look-ahead: ranks realised volatility against the whole sample instead of a trailing window."""

    name = "full_sample_vol_regime"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        frame = super().compute_indicators(candles)
        vol = pl.col("realized_vol")
        trend = pl.when(pl.col("adx") >= self.adx_threshold).then(pl.lit("trend")).otherwise(pl.lit("range"))
        level = pl.when(pl.col("vol_pct") > self.vol_split).then(pl.lit("_high_vol")).otherwise(pl.lit("_low_vol"))
        return frame.with_columns(vol_pct=(vol.rank("average") - 0.5) / vol.count()).with_columns(
            regime=pl.when(pl.col("adx").is_not_null() & pl.col("vol_pct").is_not_null()).then(trend + level)
        )


def with_inputs(name: str, candles: pl.DataFrame, *, quiet: bool = False) -> pl.DataFrame:
    """``candles`` plus what strategy ``name`` reads besides them: the pipeline's sentiment columns
    (``quantdag.stages.common.read_candles``) as a seeded, smooth synthetic mood, for the strategies
    (``sentiment``) that require them. ``quiet``: no news known at all (zeros), as before any item arrives."""
    if not any(c.startswith("sent_") for c in create_strategy(name).input_columns()):
        return candles
    rng = np.random.default_rng(17)
    mood = np.clip(np.convolve(rng.normal(0, 0.3, candles.height), np.ones(12) / 12, mode="same"), -1, 1) if candles.height else np.zeros(0)
    if quiet:
        mood = np.zeros(candles.height)
    return candles.with_columns(
        sent_count=pl.Series(rng.poisson(1.0, candles.height), dtype=pl.Int32), sent_mean=mood,
        sent_dispersion=np.abs(mood) / 2, sent_decayed=mood,
    )  # fmt: skip

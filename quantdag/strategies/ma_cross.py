"""Moving-average crossover: long while a fast average is above a slow one.

Two registry names share one schema: ``"sma_cross"`` (``ma_type`` defaults to ``"sma"``) and
``"ema_cross"`` (defaults to ``"ema"``), so a stored ``{"fast": 10, "slow": 50}`` means the same
thing under a given name forever, and either average can still be picked explicitly.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quantdag import indicators as ind
from quantdag.strategies.base import Strategy, crossed_above, crossed_below, register
from quantdag.strategies.params import ChoiceParam, IntParam, less_than

MA_TYPES = ("sma", "ema")


def moving_average(close: pl.Series | np.ndarray, period: int, ma_type: str) -> np.ndarray:
    """SMA or EMA of ``close`` through :mod:`quantdag.indicators` (NaN during warm-up)."""
    return ind.sma(close, period) if ma_type == "sma" else ind.ema(close, period)


def average_settle(period: int, ma_type: str) -> int:
    """Index from which ``moving_average`` no longer depends on where the history starts.

    An SMA is a fixed window (first value at ``period - 1``, exact from there); an EMA is
    recursive and converges only geometrically (:func:`quantdag.indicators.ema_settle`).
    """
    return period - 1 if ma_type == "sma" else ind.ema_settle(period)


@register
class SmaCross(Strategy):
    """Enter when the fast average crosses above the slow one; exit when it crosses below.

    Output columns: ``entry``, ``exit``, ``fast_ma``, ``slow_ma`` (null during warm-up).
    ``entry`` is true exactly on candle ``t`` with ``fast_ma[t] > slow_ma[t]`` and
    ``fast_ma[t-1] <= slow_ma[t-1]`` (both defined); ``exit`` mirrors it.
    """

    name = "sma_cross"
    fast = IntParam(10, low=1, high=1000, step=5, search=(5, 50), description="fast moving-average period (candles)")
    slow = IntParam(50, low=2, high=5000, step=10, search=(20, 200), description="slow moving-average period (candles)")
    ma_type = ChoiceParam("sma", choices=MA_TYPES, description="kind of moving average: 'sma' or 'ema'")
    constraints = (less_than("fast", "slow"),)

    @property
    def startup_candles(self) -> int:
        # both averages settled (an SMA at its first value, an EMA once converged); a cross also
        # needs the candle before it.
        return max(average_settle(self.fast, self.ma_type), average_settle(self.slow, self.ma_type)) + 1

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        close = candles["close"]
        return candles.with_columns(
            ind.to_series("fast_ma", moving_average(close, self.fast, self.ma_type)),
            ind.to_series("slow_ma", moving_average(close, self.slow, self.ma_type)),
        )

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        fast, slow = pl.col("fast_ma"), pl.col("slow_ma")
        return frame.with_columns(entry=crossed_above(fast, slow), exit=crossed_below(fast, slow))


@register
class EmaCross(SmaCross):
    """The same crossover with exponential averages by default (TA-Lib's SMA-seeded EMA).

    Same parameters and output columns as :class:`SmaCross`; only ``ma_type`` defaults to "ema".
    """

    name = "ema_cross"
    ma_type = ChoiceParam("ema", choices=MA_TYPES, description="kind of moving average: 'sma' or 'ema'")

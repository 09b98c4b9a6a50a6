"""MACD signal-line crossover with an optional histogram filter.

The histogram (MACD line minus signal line) is positive exactly when MACD is above its signal
line, so the plain crossover is "histogram crosses zero". The filter widens that into a band:
with ``hist_threshold = h > 0`` an entry needs the histogram, relative to the close, to climb
above ``+h`` and an exit needs it to fall below ``-h``. Measuring it relative to price keeps one
threshold meaningful across assets and years; the band removes the whipsaw crosses where MACD
and its signal line run together.
"""

from __future__ import annotations

import polars as pl

from quantdag import indicators as ind
from quantdag.strategies.base import Strategy, crossed_above, crossed_below, register
from quantdag.strategies.params import FloatParam, IntParam, less_than


@register
class MacdCross(Strategy):
    """Enter when MACD crosses above its signal line (past the filter band); exit on the reverse.

    Output columns: ``entry``, ``exit``, ``macd``, ``macd_signal``, ``macd_hist`` (price units)
    and ``macd_hist_rel`` (``macd_hist / close``), all null during warm-up.
    """

    name = "macd"
    fast = IntParam(12, low=2, high=500, step=2, search=(6, 18), description="fast EMA period (candles)")
    slow = IntParam(26, low=3, high=1000, step=2, search=(20, 40), description="slow EMA period (candles)")
    signal = IntParam(9, low=1, high=500, step=2, search=(5, 13), description="signal-line EMA period (candles)")
    hist_threshold = FloatParam(
        0.0,
        low=0.0,
        high=0.05,
        step=0.0005,
        search=(0.0, 0.002),
        description="histogram / close must exceed this to enter (and fall below minus it to exit); 0 = plain cross",
    )
    constraints = (less_than("fast", "slow"),)

    @property
    def startup_candles(self) -> int:
        # TA-Lib's three outputs start at index slow + signal - 2, but they are EMAs: they depend on
        # the history start until converged (slow EMA, then the signal EMA); a cross needs one more.
        return ind.macd_settle(self.slow, self.signal) + 1

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        line, signal, hist = ind.macd(candles["close"], self.fast, self.slow, self.signal)
        return candles.with_columns(
            ind.to_series("macd", line),
            ind.to_series("macd_signal", signal),
            ind.to_series("macd_hist", hist),
        ).with_columns(macd_hist_rel=pl.col("macd_hist") / pl.col("close"))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        rel = pl.col("macd_hist_rel")
        return frame.with_columns(
            entry=crossed_above(rel, self.hist_threshold), exit=crossed_below(rel, -self.hist_threshold)
        )

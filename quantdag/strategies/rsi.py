"""RSI mean reversion: buy the recovery from oversold, sell into strength.

The entry waits for RSI to cross back *above* the oversold line rather than buying while it is
still falling (the convention of freqtrade's sample strategy), which avoids catching every leg
of a crash. The exit fires when RSI crosses above the overbought line or, with ``exit_mid``,
above the middle line, i.e. once the reversion to the mean has happened.
"""

from __future__ import annotations

import polars as pl

from quantdag import indicators as ind
from quantdag.strategies.base import Strategy, crossed_above, register
from quantdag.strategies.params import BoolParam, Constraint, FloatParam, IntParam, less_than


@register
class RsiReversion(Strategy):
    """Enter on RSI crossing above ``oversold``; exit on crossing above ``overbought`` (or ``mid``).

    Output columns: ``entry``, ``exit``, ``rsi`` (Wilder's RSI in [0, 100], null during warm-up).
    ``entry`` is true exactly on candle ``t`` with ``rsi[t] > oversold >= rsi[t-1]``.
    """

    name = "rsi"
    period = IntParam(14, low=2, high=500, step=7, search=(7, 28), description="RSI period (candles)")
    oversold = FloatParam(
        30.0, low=0.0, high=100.0, step=5.0, search=(15.0, 40.0), description="RSI level below which the market is oversold"
    )
    overbought = FloatParam(
        70.0, low=0.0, high=100.0, step=5.0, search=(60.0, 85.0), description="RSI level above which the market is overbought"
    )
    exit_mid = BoolParam(False, description="also exit when RSI crosses above mid")
    mid = FloatParam(50.0, low=0.0, high=100.0, step=5.0, optimize=False, description="middle line used by exit_mid")
    constraints = (
        less_than("oversold", "overbought"),
        Constraint(
            "oversold < mid < overbought when exit_mid",
            lambda p: not p["exit_mid"] or p["oversold"] < p["mid"] < p["overbought"],
        ),
    )

    @property
    def startup_candles(self) -> int:
        # TA-Lib's RSI is first defined at index ``period`` but Wilder's smoothing is recursive: it
        # depends on the history start until it has converged; a crossing needs the candle before.
        return ind.wilder_settle(self.period) + 1

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(ind.to_series("rsi", ind.rsi(candles["close"], self.period)))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        rsi = pl.col("rsi")
        exit_ = crossed_above(rsi, self.overbought)
        if self.exit_mid:
            exit_ = exit_ | crossed_above(rsi, self.mid)
        return frame.with_columns(entry=crossed_above(rsi, self.oversold), exit=exit_)

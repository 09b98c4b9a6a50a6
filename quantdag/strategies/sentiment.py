"""Trade the news: follow sentiment past a threshold, or fade it when it is extreme.

Reads the candle frame's sentiment columns (``sentiment.bars``, joined onto every candle by
``quantdag.stages.common.read_candles``; see :mod:`quantdag.sentiment.bars`): by default
``sent_decayed``, the exponentially decayed score of the items published and fetched before the
candle closed. A candle with no news known has 0 there, so silence reads as neutral.

* ``threshold``: long when the score crosses above ``entry_level``, out when it crosses below
  ``exit_level`` (momentum in mood: the feed's tone partly leads returns).
* ``contrarian``: long when the score crosses below ``-entry_level`` (fear), out when it crosses
  above ``exit_level`` (fear has passed): buy panic, as the depeg episodes invite.

Signals act at the next candle's open like every strategy's; ``check_lookahead`` perturbs the
sentiment columns of future candles as it does prices.
"""

from __future__ import annotations

import polars as pl

from quantdag.strategies.base import Strategy, register
from quantdag.strategies.params import ChoiceParam, Constraint, FloatParam

MODES = ("threshold", "contrarian")


def rises_above(a: pl.Expr, level: float) -> pl.Expr:
    """True where ``a`` is above ``level`` and was not on the candle before; the first candle counts
    as a rise if it is above (unlike ``crossed_above``), so a gate starts open when the mood already is."""
    return (a > level) & ~(a.shift(1) > level).fill_null(False)


def falls_below(a: pl.Expr, level: float) -> pl.Expr:
    """True where ``a`` is below ``level`` and was not on the candle before (the first candle included)."""
    return (a < level) & ~(a.shift(1) < level).fill_null(False)
COLUMNS = ("sent_decayed", "sent_mean")


@register
class SentimentStrategy(Strategy):
    """Long on sentiment crossing ``entry_level`` (threshold) or ``-entry_level`` (contrarian).

    Output columns: ``entry``, ``exit``, ``sentiment`` (the column it reads, renamed so the
    stored signals show what was traded on).
    """

    name = "sentiment"
    required_columns = ("close", "sent_decayed", "sent_mean")
    mode = ChoiceParam("threshold", choices=MODES, description="'threshold' follows the mood, 'contrarian' fades fear")
    column = ChoiceParam("sent_decayed", choices=COLUMNS, optimize=False, description="the sentiment column read")
    entry_level = FloatParam(0.1, low=-1.0, high=1.0, step=0.05, search=(0.0, 0.4), description="score (threshold) or -score (contrarian) that enters")
    exit_level = FloatParam(0.0, low=-1.0, high=1.0, step=0.05, search=(-0.2, 0.2), description="score crossed to exit")
    constraints = (
        Constraint("exit_level < entry_level when mode is threshold, -entry_level < exit_level when contrarian",
                   lambda p: p["exit_level"] < p["entry_level"] if p["mode"] == "threshold" else -p["entry_level"] < p["exit_level"]),
    )  # fmt: skip

    @property
    def startup_candles(self) -> int:
        return 1  # a crossing needs the candle before

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(sentiment=pl.col(self.column).cast(pl.Float64))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        s = pl.col("sentiment")
        if self.mode == "threshold":
            entry, exit_ = rises_above(s, self.entry_level), falls_below(s, self.exit_level)
        else:
            entry, exit_ = falls_below(s, -self.entry_level), rises_above(s, self.exit_level)
        return frame.with_columns(entry=entry, exit=exit_)

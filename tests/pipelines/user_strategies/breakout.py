"""A user strategy as the README shows one: no registration needed, the folder is in strategy_paths."""

import polars as pl

from quantdag.strategies import IntParam, Strategy, crossed_above, crossed_below


class Breakout(Strategy):
    """Enter on a close above the previous ``window``-candle high; exit below the previous low."""

    name = "user_breakout"
    required_columns = ("high", "low", "close")
    window = IntParam(24, low=2, high=500, step=4, search=(12, 72), description="look-back (candles)")

    @property
    def startup_candles(self) -> int:
        return self.window + 1

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(
            prior_high=pl.col("high").shift(1).rolling_max(self.window),  # candles < t only
            prior_low=pl.col("low").shift(1).rolling_min(self.window),
        )

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            entry=crossed_above(pl.col("close"), pl.col("prior_high")),
            exit=crossed_below(pl.col("close"), pl.col("prior_low")),
        )

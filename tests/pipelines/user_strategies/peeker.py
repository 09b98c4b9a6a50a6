"""A user strategy that cheats: it buys when the NEXT candle closes higher (uses the future)."""

import polars as pl

from quantdag.strategies import Strategy, register


@register
class Peeker(Strategy):
    """Enter when tomorrow's close is above today's: a perfect, impossible strategy."""

    name = "user_peeker"

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(next_close=pl.col("close").shift(-1))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        up = (pl.col("next_close") > pl.col("close")).fill_null(False)
        return frame.with_columns(entry=up, exit=~up)

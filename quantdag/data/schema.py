"""Pandera model of the CANDLES frame, for the pipeline's blocking checks (via dagster-pandera).

:func:`quantdag.data.clean.clean_candles` already guarantees all of this; the schema is the
independent second line, run where frames cross asset boundaries, so a bug in the cleaner or a
hand-written frame cannot slip bad candles into ``market.candles``. Each dataframe-level check
has its own name, so a failure report says which invariant broke.

Importing pandera pulls in pandas (seconds), which is why this module is separate from
:mod:`quantdag.data.frames` and not imported by ``quantdag.data`` until asked for.
"""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from quantdag.data.frames import CANDLE_KEY


class CandleSchema(pa.DataFrameModel):
    """CANDLES frame (``market.candles``): typed, non-null, positive prices, OHLC-consistent, unique."""

    exchange: str = pa.Field(nullable=False)
    symbol: str = pa.Field(nullable=False)
    timeframe: str = pa.Field(nullable=False)
    ts: Annotated[pl.Datetime, "ms", "UTC"] = pa.Field(nullable=False)
    open: float = pa.Field(nullable=False, gt=0)
    high: float = pa.Field(nullable=False, gt=0)
    low: float = pa.Field(nullable=False, gt=0)
    close: float = pa.Field(nullable=False, gt=0)
    volume: float = pa.Field(nullable=False, ge=0)
    filled: bool = pa.Field(nullable=False)

    class Config:
        """Exact columns (no extras), no coercion: a wrong dtype is a bug upstream, not data."""

        name = "CandleSchema"
        strict = True
        coerce = False
        unique = list(CANDLE_KEY)

    @pa.dataframe_check
    def high_ge_low(cls, data: PolarsData) -> pl.LazyFrame:
        """high >= low."""
        return data.lazyframe.select(pl.col("high") >= pl.col("low"))

    @pa.dataframe_check
    def high_ge_open_close(cls, data: PolarsData) -> pl.LazyFrame:
        """high >= max(open, close)."""
        return data.lazyframe.select(pl.col("high") >= pl.max_horizontal("open", "close"))

    @pa.dataframe_check
    def low_le_open_close(cls, data: PolarsData) -> pl.LazyFrame:
        """low <= min(open, close)."""
        return data.lazyframe.select(pl.col("low") <= pl.min_horizontal("open", "close"))

    @pa.dataframe_check
    def prices_finite(cls, data: PolarsData) -> pl.LazyFrame:
        """open, high, low, close and volume are finite (``gt=0`` alone lets +inf and NaN through)."""
        return data.lazyframe.select(pl.all_horizontal(pl.col("open", "high", "low", "close", "volume").is_finite()))

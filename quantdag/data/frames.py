"""Column contracts of the market-data frames, shared by the engine and the DuckDB tables.

The names and dtypes here are the ones in ``sql/create_*.sql``; the warehouse inserts by name,
so a frame that matches these schemas lands in its table unchanged. Kept free of pandera (whose
import pulls in pandas, seconds at start-up): :mod:`quantdag.data.schema` builds the pandera
model on top of these constants for the pipeline's checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, DataError

UTC_MS = pl.Datetime("ms", "UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Natural key of a market: one instrument on one venue at one candle length.
MARKET_KEY = ("exchange", "symbol", "timeframe")
#: Natural key of a candle.
CANDLE_KEY = (*MARKET_KEY, "ts")
PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV = (*PRICE_COLUMNS, "volume")

RAW_SCHEMA: Mapping[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "ts": pl.Int64(),
    **{c: pl.Float64() for c in OHLCV},
    "fetched_at": UTC_MS,
}

CANDLES_SCHEMA: Mapping[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "ts": UTC_MS,
    **{c: pl.Float64() for c in OHLCV},
    "filled": pl.Boolean(),
}

GAPS_SCHEMA: Mapping[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "gap_start": UTC_MS,
    "gap_end": UTC_MS,
    "missing": pl.Int64(),
    "filled": pl.Boolean(),
}

EVENTS_SCHEMA: Mapping[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "event_type": pl.String(),
    "ts_start": UTC_MS,
    "ts_end": UTC_MS,
    "severity": pl.String(),
    "score": pl.Float64(),
    "detail": pl.String(),
}

EVENT_TYPES = ("price_jump", "volume_spike", "gap", "dislocation", "depeg", "vol_regime")
SEVERITIES = ("info", "warning", "critical")


def empty_frame(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A zero-row frame with exactly ``schema``, so empty partitions still have typed columns."""
    return pl.DataFrame(schema=dict(schema))


def require_columns(frame: pl.DataFrame, columns: tuple[str, ...] | Mapping[str, object], what: str) -> None:
    """Fail early, naming every missing column, instead of a polars ``ColumnNotFoundError`` later.

    Raises
    ------
    DataError
        If ``frame`` lacks any of ``columns``.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} frame is missing column(s) {missing}; it has {frame.columns}")


def to_epoch_ms(value: datetime | int, name: str) -> int:
    """Epoch milliseconds from a datetime (naive means UTC) or an int already in ms.

    Raises
    ------
    ConfigurationError
        If ``value`` is neither.
    """
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
        return (aware - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise ConfigurationError(f"{name} must be a datetime or epoch milliseconds, got {value!r}")


def utc_ms(frame: pl.DataFrame, column: str) -> pl.Expr:
    """``column`` as Datetime("ms", "UTC"): naive means UTC, other zones are converted.

    Raises
    ------
    DataError
        If the column is not a datetime.
    """
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Datetime):
        raise DataError(f"column {column} must be a datetime, got {dtype}")
    expr = pl.col(column)
    expr = expr.dt.replace_time_zone("UTC") if dtype.time_zone is None else expr.dt.convert_time_zone("UTC")
    return expr.dt.cast_time_unit("ms")


def timeframe_steps(timeframes: pl.Series | list[str], what: str = "candles") -> dict[str, int]:
    """Milliseconds per candle of each distinct timeframe in ``timeframes``.

    Raises
    ------
    DataError
        If one is not a timeframe (the data, not a setting, is at fault: hence not ConfigurationError).
    """
    from quantdag.timeframes import timeframe_ms

    steps: dict[str, int] = {}
    for tf in (timeframes.unique().to_list() if isinstance(timeframes, pl.Series) else sorted(set(timeframes))):
        try:
            steps[tf] = timeframe_ms(tf)
        except ConfigurationError as exc:
            raise DataError(f"{what} have an unknown timeframe {tf!r}") from exc
    return steps

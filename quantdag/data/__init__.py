"""Market-data engine: raw candles -> clean candles and gaps -> resampled candles and market events.

The frames and their columns are defined once in :mod:`quantdag.data.frames` (the same names
and types as the DuckDB tables). ``CandleSchema`` (pandera) is importable from here but loaded
on first use, because pandera imports pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quantdag.data.clean import CleanCounts, CleanResult, candles_to_raw, clean_candles
from quantdag.data.events import EventConfig, detect_events
from quantdag.data.frames import (
    CANDLE_KEY,
    CANDLES_SCHEMA,
    EVENTS_SCHEMA,
    GAPS_SCHEMA,
    MARKET_KEY,
    RAW_SCHEMA,
)
from quantdag.data.holes import describe_holes, find_holes
from quantdag.data.resample import ResampleResult, resample, resample_with_report

if TYPE_CHECKING:
    from quantdag.data.schema import CandleSchema

__all__ = [
    "CANDLES_SCHEMA",
    "CANDLE_KEY",
    "EVENTS_SCHEMA",
    "GAPS_SCHEMA",
    "MARKET_KEY",
    "RAW_SCHEMA",
    "CandleSchema",
    "CleanCounts",
    "CleanResult",
    "EventConfig",
    "ResampleResult",
    "candles_to_raw",
    "clean_candles",
    "describe_holes",
    "detect_events",
    "find_holes",
    "resample",
    "resample_with_report",
]


def __getattr__(name: str) -> Any:
    if name == "CandleSchema":
        from quantdag.data.schema import CandleSchema

        return CandleSchema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

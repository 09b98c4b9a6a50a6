"""Timeframes as the exchanges spell them ('1m', '1h', '1d'), converted once to milliseconds."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

from quantdag.errors import ConfigurationError

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}

#: Timeframes the pipeline supports, finest first.
SUPPORTED = ("1m", "5m", "15m", "1h", "4h", "1d")

MS_PER_DAY = 86_400_000
MS_PER_YEAR = 365 * MS_PER_DAY  # crypto trades 24/7: a year is 365 full days


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle in milliseconds.

    Raises
    ------
    ConfigurationError
        If ``timeframe`` is not ``<positive int><m|h|d|w>``.
    """
    if not isinstance(timeframe, str) or len(timeframe) < 2 or timeframe[-1] not in _UNIT_MS:
        raise ConfigurationError(f"unknown timeframe {timeframe!r}; expected e.g. '1m', '5m', '1h', '1d'")
    count = timeframe[:-1]
    if not count.isdigit() or int(count) <= 0:
        raise ConfigurationError(f"unknown timeframe {timeframe!r}; expected e.g. '1m', '5m', '1h', '1d'")
    return int(count) * _UNIT_MS[timeframe[-1]]


def periods_per_year(timeframe: str) -> float:
    """Candles per year for a 24/7 market, used to annualise returns and volatility."""
    return MS_PER_YEAR / timeframe_ms(timeframe)


def candles_per_year(ts: "pl.Series", timeframe: str | None = None) -> float:
    """Candles per year of a series of candle times: ``timeframe``'s, else the median spacing's
    (NaN when there is no spacing to measure). Metrics, tear sheets and allocations annualise by it."""
    if timeframe is not None:
        return periods_per_year(timeframe)
    step = ts.diff().drop_nulls().dt.total_milliseconds().median() if ts.len() > 1 else None
    return MS_PER_YEAR / float(step) if step else float("nan")

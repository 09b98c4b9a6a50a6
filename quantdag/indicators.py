"""Technical indicators over float arrays, through TA-Lib, with warm-up values as nulls.

TA-Lib marks its warm-up with NaN; SQL's ``IS NOT NULL`` would let those through, so every
function here returns a float64 numpy array where NaN means "not yet defined", and
:func:`to_series` turns that into a polars Series with nulls. Strategies and the pipeline both
call these functions, so an indicator is computed one way everywhere.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import talib

from quantdag.errors import ConfigurationError

ArrayLike = np.ndarray | pl.Series


def _arr(x: ArrayLike) -> np.ndarray:
    if isinstance(x, pl.Series):
        x = x.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return np.ascontiguousarray(x, dtype=np.float64)


def _period(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def sma(close: ArrayLike, period: int) -> np.ndarray:
    """Simple moving average; undefined for the first ``period - 1`` values."""
    return talib.SMA(_arr(close), timeperiod=_period("period", period))


def ema(close: ArrayLike, period: int) -> np.ndarray:
    """Exponential moving average seeded with the SMA (TA-Lib's convention)."""
    return talib.EMA(_arr(close), timeperiod=_period("period", period))


def rsi(close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder's relative strength index in [0, 100]."""
    return talib.RSI(_arr(close), timeperiod=_period("period", period, 2))


def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram.

    Raises
    ------
    ConfigurationError
        If ``fast >= slow``.
    """
    fast, slow, signal = _period("fast", fast, 2), _period("slow", slow, 2), _period("signal", signal)
    if fast >= slow:
        raise ConfigurationError(f"macd fast ({fast}) must be < slow ({slow})")
    return talib.MACD(_arr(close), fastperiod=fast, slowperiod=slow, signalperiod=signal)


def bbands(
    close: ArrayLike, period: int = 20, nbdev: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands: upper, middle (SMA) and lower, ``nbdev`` population std devs apart."""
    if not np.isfinite(nbdev) or nbdev <= 0:
        raise ConfigurationError(f"bbands nbdev must be > 0, got {nbdev!r}")
    return talib.BBANDS(_arr(close), timeperiod=_period("period", period, 2), nbdevup=nbdev, nbdevdn=nbdev)


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder's average true range, in price units."""
    return talib.ATR(_arr(high), _arr(low), _arr(close), timeperiod=_period("period", period))


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder's average directional index in [0, 100]: trend strength, not direction."""
    return talib.ADX(_arr(high), _arr(low), _arr(close), timeperiod=_period("period", period, 2))


def to_series(name: str, values: np.ndarray) -> pl.Series:
    """A polars Float64 Series with TA-Lib's NaN warm-up turned into nulls."""
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None)

"""The pipeline's indicator frame: one row per clean candle, TA-Lib indicators, nulls while warming.

Indicators come from :mod:`quantdag.indicators` so that strategies and the pipeline compute each
one the same way. The pipeline runs per daily partition, but EMA, RSI, ATR and ADX are
recursive: their value today depends on every earlier candle, with a memory that fades
geometrically. Each partition is therefore computed over a look-back window of earlier candles
(``warm_start`` marks where the partition begins) long enough that the fading memory is below
1e-6 relative, which makes a partition's values equal, to that tolerance, those of one
computation over the whole history (tested on real candles).

Why :data:`LOOKBACK_BARS` = 500: the slowest-forgetting state is Wilder's smoothing with
period 14 (RSI, ATR, and ADX on top of its smoothed DM/TR), which keeps (13/14)^n of a start-up
error after n candles; (13/14)^n < 1e-6 needs n > 187, and ADX's second smoothing stage and
TA-Lib's seeding add roughly another 14 + 27 candles. EMA-26 forgets faster ((25/27)^n). Real
data needed about 300 candles (see tests); 500 leaves margin for calmer, trendier markets where
the start-up error is relatively larger.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import polars as pl

from quantdag import indicators as ta
from quantdag.data.frames import CANDLE_KEY, MARKET_KEY, UTC_MS, require_columns, to_epoch_ms, utc_ms
from quantdag.errors import DataError
from quantdag.timeframes import MS_PER_DAY, timeframe_ms

#: Candles of history before a partition's first candle so that every indicator is warm and
#: within 1e-6 (relative) of a full-history computation.
LOOKBACK_BARS = 500

INDICATOR_COLUMNS = (
    "sma_20",
    "sma_50",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "adx_14",
)

#: Columns and types of the indicator frame (table ``features.indicators``).
INDICATORS_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "ts": UTC_MS,
    **{c: pl.Float64() for c in INDICATOR_COLUMNS},
}


def lookback_days(timeframe: str) -> int:
    """Whole earlier daily partitions whose candles cover :data:`LOOKBACK_BARS` of ``timeframe``.

    E.g. 1m -> 1, 5m -> 2, 1h -> 21, 1d -> 500 (one candle a day).

    Raises
    ------
    ConfigurationError
        If ``timeframe`` is not a valid timeframe.
    """
    bars_per_day = MS_PER_DAY / timeframe_ms(timeframe)
    return math.ceil(LOOKBACK_BARS / bars_per_day)


def compute_indicators(candles: pl.DataFrame, *, warm_start: datetime | int | None = None) -> pl.DataFrame:
    """Indicator frame of one or more markets' CANDLES.

    Parameters
    ----------
    candles
        CANDLES frame (needs exchange, symbol, timeframe, ts, high, low, close), unique on the
        key, any order; each market is computed over its candles sorted by ts.
    warm_start
        Candles with ``ts < warm_start`` only warm the indicators (look-back context from
        earlier partitions) and are dropped from the output. Datetime (naive means UTC) or
        epoch ms; ``None`` keeps every candle.

    Returns
    -------
    pl.DataFrame
        :data:`INDICATORS_SCHEMA` columns, sorted by key: sma_20, sma_50, ema_12, ema_26,
        rsi_14, macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, atr_14, adx_14
        (Float64, null while warming up, never NaN).

    Raises
    ------
    DataError
        If columns are missing, keys are duplicated, or prices are null or non-finite.
    """
    require_columns(candles, ("exchange", "symbol", "timeframe", "ts", "high", "low", "close"), "candles")
    frame = candles.select(
        *MARKET_KEY,
        utc_ms(candles, "ts"),
        *(pl.col(c).cast(pl.Float64) for c in ("high", "low", "close")),
    ).sort(CANDLE_KEY)
    if frame.select(pl.struct(CANDLE_KEY).is_duplicated().any()).item():
        raise DataError("compute_indicators needs candles unique on (exchange, symbol, timeframe, ts)")
    if not frame.select(pl.all_horizontal(pl.col("high", "low", "close").is_finite()).all()).item():
        raise DataError("compute_indicators needs finite, non-null high, low and close")
    # One TA-Lib pass per market over contiguous arrays (markets are contiguous after the sort).
    sizes = frame.group_by(MARKET_KEY, maintain_order=True).len()["len"].to_list()
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    columns: dict[str, list[np.ndarray]] = {c: [] for c in INDICATOR_COLUMNS}
    start = 0
    for size in sizes:
        part = slice(start, start + size)
        for name, values in _indicators(high[part], low[part], close[part]).items():
            columns[name].append(values)
        start += size
    values = {
        name: ta.to_series(name, np.concatenate(parts) if parts else np.empty(0)) for name, parts in columns.items()
    }
    out = frame.select(*MARKET_KEY, "ts").with_columns(**values)
    if warm_start is not None:
        out = out.filter(pl.col("ts") >= pl.lit(to_epoch_ms(warm_start, "warm_start")).cast(UTC_MS))
    return out.cast(INDICATORS_SCHEMA)


def _indicators(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> dict[str, np.ndarray]:
    """The 13 indicator arrays of one market (NaN while warming up)."""
    macd, signal, hist = ta.macd(close, 12, 26, 9)
    upper, middle, lower = ta.bbands(close, 20, 2.0)
    return {
        "sma_20": ta.sma(close, 20),
        "sma_50": ta.sma(close, 50),
        "ema_12": ta.ema(close, 12),
        "ema_26": ta.ema(close, 26),
        "rsi_14": ta.rsi(close, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "atr_14": ta.atr(high, low, close, 14),
        "adx_14": ta.adx(high, low, close, 14),
    }

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

Which indicators are computed is configurable (``quantdag.yaml``: ``indicators``, see
:func:`indicator_specs`); :data:`DEFAULT_INDICATORS` is the shipped set. A spec that needs more
history than :data:`LOOKBACK_BARS` (a long TA-Lib period, or an explicit ``lookback_bars``)
lengthens the look-back of every market. A user indicator is recomputed on a few prefixes of
each market's candles (:func:`check_causal`), so one that peeks at later candles is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from quantdag import indicators as ta
from quantdag.data.frames import CANDLE_KEY, MARKET_KEY, UTC_MS, require_columns, to_epoch_ms, utc_ms
from quantdag.errors import ConfigurationError, DataError, StrategyError
from quantdag.indicators import IndicatorConfigError, IndicatorSpec, indicator_spec, key_path
from quantdag.timeframes import MS_PER_DAY, timeframe_ms

#: Candles of history before a partition's first candle so that every indicator is warm and
#: within 1e-6 (relative) of a full-history computation.
LOOKBACK_BARS = 500

#: The shipped ``indicators`` section of ``quantdag.yaml``: today's columns, computed as before.
DEFAULT_INDICATOR_ENTRIES: tuple[dict[str, Any], ...] = (
    {"column": "sma_20", "function": "SMA", "params": {"timeperiod": 20}},
    {"column": "sma_50", "function": "SMA", "params": {"timeperiod": 50}},
    {"column": "ema_12", "function": "EMA", "params": {"timeperiod": 12}},
    {"column": "ema_26", "function": "EMA", "params": {"timeperiod": 26}},
    {"column": "rsi_14", "function": "RSI", "params": {"timeperiod": 14}},
    {
        "columns": {"macd": "macd", "macdsignal": "macd_signal", "macdhist": "macd_hist"},
        "function": "MACD",
        "params": {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9},
    },
    {
        "columns": {"upperband": "bb_upper", "middleband": "bb_middle", "lowerband": "bb_lower"},
        "function": "BBANDS",
        "params": {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0},
    },
    {"column": "atr_14", "function": "ATR", "params": {"timeperiod": 14}},
    {"column": "adx_14", "function": "ADX", "params": {"timeperiod": 14}},
)

#: Prefix lengths (fractions of a market's candles, plus the last two) a user indicator is recomputed on.
CAUSALITY_FRACTIONS = (0.25, 0.5, 0.75)
_CAUSAL_RTOL, _CAUSAL_ATOL = 1e-9, 1e-12


def check_indicator_columns(entries: Sequence[Mapping[str, Any]]) -> None:
    """Columns across entries: unique, and none is a key column of ``features.indicators``.

    Raises
    ------
    IndicatorConfigError
        With ``key`` = (entry index, ``column`` or ``columns``, output) of the offending one.
    """
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        cols = e.get("columns") or {}
        named = [(("column",), e.get("column"))] if e.get("column") is not None else []
        named += [(("columns", str(o)), c) for o, c in cols.items()] if isinstance(cols, Mapping) else []
        for key, col in named:
            if not isinstance(col, str):
                continue  # not a name at all: the entry's own check reports it
            if col in CANDLE_KEY:
                raise IndicatorConfigError((i, *key), f"{col!r} is a key column of features.indicators")
            if col in seen:
                raise IndicatorConfigError((i, *key), f"{col!r} is already written by indicators[{seen[col]}]")
            seen[col] = i


def indicator_specs(entries: Iterable[Mapping[str, Any]], *, where: str = "indicators") -> tuple[IndicatorSpec, ...]:
    """Specs of ``indicators`` entries (mappings as in ``quantdag.yaml``), user indicators resolved.

    Call after user files are imported (``strategy_paths``), so their indicators are registered.

    Raises
    ------
    ConfigurationError
        Naming the path of the bad value, e.g. ``indicators[3].params.timeperod``.
    """
    entries = list(entries)
    specs = []
    try:
        check_indicator_columns(entries)
    except IndicatorConfigError as exc:
        raise ConfigurationError(f"{key_path(exc.key, where)}: {exc.message}") from None
    for i, e in enumerate(entries):
        unknown = sorted(set(e) - {"function", "column", "columns", "params", "inputs", "lookback_bars"})
        if unknown:
            raise ConfigurationError(f"{key_path((i, unknown[0]), where)}: unknown key of an indicator entry")
        try:
            spec = indicator_spec(**e)
        except IndicatorConfigError as exc:
            raise ConfigurationError(f"{key_path((i, *exc.key), where)}: {exc.message}") from None
        assert spec is not None
        specs.append(spec)
    return tuple(specs)


#: The shipped indicator set (what ``compute_indicators`` computes unless told otherwise).
DEFAULT_INDICATORS: tuple[IndicatorSpec, ...] = indicator_specs(DEFAULT_INDICATOR_ENTRIES)

#: Columns of the shipped set, in table order (``sql/create_features_indicators.sql``).
INDICATOR_COLUMNS: tuple[str, ...] = tuple(c for spec in DEFAULT_INDICATORS for c in spec.columns)


def indicators_schema(specs: Sequence[IndicatorSpec] = DEFAULT_INDICATORS) -> dict[str, pl.DataType]:
    """Columns and types of the indicator frame of ``specs``: the candle key, then a Float64 per column."""
    return {
        "exchange": pl.String(),
        "symbol": pl.String(),
        "timeframe": pl.String(),
        "ts": UTC_MS,
        **{c: pl.Float64() for spec in specs for c in spec.columns},
    }


#: Columns and types of the default indicator frame (table ``features.indicators``).
INDICATORS_SCHEMA: dict[str, pl.DataType] = indicators_schema()


def lookback_bars(specs: Sequence[IndicatorSpec] = DEFAULT_INDICATORS) -> int:
    """Candles of history before a partition: :data:`LOOKBACK_BARS`, or more if a spec needs it."""
    return max(LOOKBACK_BARS, *(s.lookback_bars for s in specs))


def lookback_days(timeframe: str, specs: Sequence[IndicatorSpec] = DEFAULT_INDICATORS) -> int:
    """Whole earlier daily partitions whose candles cover :func:`lookback_bars` of ``timeframe``.

    E.g. 1m -> 1, 5m -> 2, 1h -> 21, 1d -> 500 (one candle a day) for the default specs.

    Raises
    ------
    ConfigurationError
        If ``timeframe`` is not a valid timeframe.
    """
    bars_per_day = MS_PER_DAY / timeframe_ms(timeframe)
    return math.ceil(lookback_bars(specs) / bars_per_day)


def compute_indicators(
    candles: pl.DataFrame,
    *,
    warm_start: datetime | int | None = None,
    specs: Sequence[IndicatorSpec] = DEFAULT_INDICATORS,
    check_causality: bool = True,
) -> pl.DataFrame:
    """Indicator frame of one or more markets' CANDLES.

    Parameters
    ----------
    candles
        CANDLES frame (needs exchange, symbol, timeframe, ts and the TA-Lib inputs of ``specs``:
        high, low, close for the defaults), unique on the key, any order; each market is
        computed over its candles sorted by ts.
    warm_start
        Candles with ``ts < warm_start`` only warm the indicators (look-back context from
        earlier partitions) and are dropped from the output. Datetime (naive means UTC) or
        epoch ms; ``None`` keeps every candle.
    specs
        The indicators (:func:`indicator_specs`); default :data:`DEFAULT_INDICATORS`.
    check_causality
        Recompute user indicators on prefixes (:func:`check_causal`) and refuse look-ahead.

    Returns
    -------
    pl.DataFrame
        :func:`indicators_schema` columns, sorted by key; for the defaults sma_20, sma_50, ema_12,
        ema_26, rsi_14, macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, atr_14,
        adx_14 (Float64, null while warming up, never NaN).

    Raises
    ------
    DataError
        If columns are missing, keys are duplicated, or prices are null or non-finite.
    StrategyError
        If a user indicator fails, returns one value per candle wrongly, or looks ahead.
    """
    specs = tuple(specs)
    schema = indicators_schema(specs)
    if len(schema) != len(CANDLE_KEY) + sum(len(s.columns) for s in specs):
        raise ConfigurationError(f"indicator columns must be unique and not {list(CANDLE_KEY)}: {[s.columns for s in specs]}")
    inputs = tuple(c for c in ta.CANDLE_INPUTS if any(c in s.inputs for s in specs))
    require_columns(candles, (*CANDLE_KEY, *inputs), "candles")
    frame = candles.with_columns(utc_ms(candles, "ts"), *(pl.col(c).cast(pl.Float64) for c in inputs)).sort(CANDLE_KEY)
    if frame.select(pl.struct(CANDLE_KEY).is_duplicated().any()).item():
        raise DataError("compute_indicators needs candles unique on (exchange, symbol, timeframe, ts)")
    if inputs and not frame.select(pl.all_horizontal(pl.col(inputs).is_finite()).all()).item():
        raise DataError(f"compute_indicators needs finite, non-null {', '.join(inputs)}")
    # One pass per market over contiguous arrays (markets are contiguous after the sort).
    sizes = frame.group_by(MARKET_KEY, maintain_order=True).len()["len"].to_list()
    arrays = {c: frame[c].to_numpy() for c in inputs}
    columns: dict[str, list[np.ndarray]] = {c: [] for c in schema if c not in CANDLE_KEY}
    start = 0
    for size in sizes:
        part = slice(start, start + size)
        market = {c: a[part] for c, a in arrays.items()}
        rows = frame.slice(start, size) if any(s.user for s in specs) else None
        for spec in specs:
            values = spec.compute(market, rows)
            if spec.user is not None and check_causality:
                assert rows is not None
                check_causal(spec, rows, values)
            for name, v in values.items():
                columns[name].append(v)
        start += size
    values = {
        name: ta.to_series(name, np.concatenate(parts) if parts else np.empty(0)) for name, parts in columns.items()
    }
    out = frame.select(*MARKET_KEY, "ts").with_columns(**values)
    if warm_start is not None:
        out = out.filter(pl.col("ts") >= pl.lit(to_epoch_ms(warm_start, "warm_start")).cast(UTC_MS))
    return out.cast(schema)


def causality_cuts(n: int) -> list[int]:
    """Prefix lengths a user indicator is recomputed on: a few spread ones and the last two."""
    if n < 2:
        return []
    return sorted({k for k in (*(int(n * f) for f in CAUSALITY_FRACTIONS), n - 2, n - 1) if 1 <= k < n})


def check_causal(spec: IndicatorSpec, candles: pl.DataFrame, values: Mapping[str, np.ndarray]) -> None:
    """Refuse a user indicator whose value at row t changes when rows after t are removed.

    Recomputes on :func:`causality_cuts` prefixes of one market's ``candles`` and compares with
    the full computation ``values`` (``rtol`` 1e-9; NaN equals NaN). A ``shift(-1)`` shows on a
    prefix's last row, a full-sample statistic almost everywhere.

    Raises
    ------
    StrategyError
        Naming the indicator, the column and the first differing candle.
    """
    for k in causality_cuts(candles.height):
        prefix = spec.compute({}, candles.head(k))
        worst: tuple[int, str] | None = None
        for col, full in values.items():
            a, b = full[:k], prefix[col]
            with np.errstate(invalid="ignore"):
                same = (a == b) | (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= _CAUSAL_ATOL + _CAUSAL_RTOL * np.abs(a))
            bad = np.flatnonzero(~same)
            if bad.size and (worst is None or bad[0] < worst[0]):
                worst = (int(bad[0]), col)
        if worst is not None:
            row, col = worst
            raise StrategyError(
                f"indicator {spec.function!r} looks ahead: column {col!r} at candle ts={candles['ts'][row]} "
                f"({candles['symbol'][row]} {candles['timeframe'][row]}, row {row}) is {float(values[col][row])!r} "
                f"with {candles.height} candles but {float(prefix[col][row])!r} with only the first {k}; "
                "a value at row t may use rows <= t only"
            )

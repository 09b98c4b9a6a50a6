"""Fine clean candles -> coarser candles on the UTC epoch grid, complete buckets only.

A coarse candle is emitted only when every fine candle of its bucket is present: a partial
bucket (the still-forming last hour, or one cut by a partition edge) would be a candle whose
high, low and volume are silently too small, and would later disagree with the complete one.
Partial buckets are dropped and counted (:func:`resample_with_report` returns the count;
:func:`resample` just the candles) rather than kept with a flag, so every row of the output can
be used without a second look. Fine candles
that were gap-filled do count as present (they stand for intervals with no trades); the coarse
candle is then ``filled=True``, so consumers can tell it is not entirely exchange data.

A filled candle's prices are synthetic (flat at the previous close), so it lends the coarse
candle only its close: open, high and low come from the traded fine candles alone, as the
exchange builds its own coarse candle from trades (a filled first child would otherwise make the
open the previous hour's close, and a flat print could poke out past the hour's real range).
The close stays the last child's, since a filled child's close is the last traded price. A
bucket of filled candles only is flat at that price.

Buckets are aligned to multiples of the target length since the epoch, in UTC (1h on the hour,
1d at 00:00 UTC), matching how exchanges label their own coarse candles.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from quantdag.data.frames import CANDLE_KEY, CANDLES_SCHEMA, MARKET_KEY, UTC_MS, empty_frame, require_columns
from quantdag.errors import ConfigurationError, DataError
from quantdag.timeframes import SUPPORTED, timeframe_ms


@dataclass(frozen=True, eq=False)
class ResampleResult:
    """Coarse CANDLES frame plus the number of buckets dropped because they were incomplete."""

    candles: pl.DataFrame
    incomplete_buckets: int


def resample(candles: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """The complete coarse candles of :func:`resample_with_report`, as a CANDLES frame.

    Raises
    ------
    ConfigurationError, DataError
        As :func:`resample_with_report`.
    """
    return resample_with_report(candles, timeframe).candles


def resample_with_report(candles: pl.DataFrame, timeframe: str) -> ResampleResult:
    """Aggregate a CANDLES frame of one or more markets to the coarser ``timeframe``.

    open = first, high = max, low = min over the traded (not filled) fine candles, close = last,
    volume = sum, filled = any; a bucket of filled candles only is flat at its close.

    Parameters
    ----------
    candles
        CANDLES frame (unique on the key; any row order). Each market may have its own
        source timeframe, as long as ``timeframe`` is a whole multiple of it.
    timeframe
        Target, one of :data:`quantdag.timeframes.SUPPORTED`.

    Returns
    -------
    ResampleResult
        ``candles`` sorted by key with ``timeframe`` set to the target; ``incomplete_buckets``.

    Raises
    ------
    ConfigurationError
        If ``timeframe`` is unsupported, or not coarser than and a whole multiple of a source
        timeframe.
    DataError
        If columns are missing or the frame has duplicate keys.
    """
    if timeframe not in SUPPORTED:
        raise ConfigurationError(f"resample target timeframe {timeframe!r} is not one of {SUPPORTED}")
    require_columns(candles, CANDLES_SCHEMA, "candles")
    target = timeframe_ms(timeframe)
    sources = candles["timeframe"].unique().sort().to_list()
    ratio: dict[str, int] = {}
    for source in sources:
        source_ms = timeframe_ms(source)
        if target <= source_ms or target % source_ms:
            raise ConfigurationError(
                f"cannot resample {source} candles to {timeframe}: the target must be coarser and a whole multiple"
            )
        ratio[source] = target // source_ms
    if candles.height == 0:
        return ResampleResult(empty_frame(CANDLES_SCHEMA), 0)
    if candles.select(pl.struct(CANDLE_KEY).is_duplicated().any()).item():
        raise DataError("resample needs candles unique on (exchange, symbol, timeframe, ts); found duplicates")

    ts_ms = pl.col("ts").dt.epoch("ms")
    traded = ~pl.col("filled")
    buckets = (
        candles.sort(CANDLE_KEY)  # group_by keeps row order within a group: first/last are by ts
        .with_columns(bucket=ts_ms // target * target)
        .group_by(*MARKET_KEY, "bucket")
        .agg(
            pl.col("open").filter(traded).first(),
            pl.col("high").filter(traded).max(),
            pl.col("low").filter(traded).min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.col("filled").any(),
            pl.len().alias("n"),
        )
        .with_columns(expected=pl.col("timeframe").replace_strict(ratio, return_dtype=pl.UInt32))
    )
    complete = buckets.filter(pl.col("n") == pl.col("expected"))
    flat = pl.col("close")  # no traded child: every child is flat at the previous close
    out = complete.select(
        "exchange", "symbol", pl.lit(timeframe).alias("timeframe"), pl.col("bucket").cast(UTC_MS).alias("ts"),
        pl.col("open").fill_null(flat), pl.col("high").fill_null(flat), pl.col("low").fill_null(flat),
        "close", "volume", "filled",
    ).sort(CANDLE_KEY)
    if out.select(pl.struct(CANDLE_KEY).is_duplicated().any()).item():
        raise DataError(f"several source timeframes of one market resample onto the same {timeframe} candles")
    return ResampleResult(out.cast(dict(CANDLES_SCHEMA)), buckets.height - complete.height)

"""Market events as per-candle columns: how many events of each type started at each candle.

Stored events (``market.events``) are intervals. What a candle may use of them is only what was
known at its close: an event's **start** is (detection is causal: the flag at ``ts_start``
depends on candles up to it), its end and its peak score are not (they need later candles, and
an event still going on is stored with a provisional end until its day is rebuilt). So the
per-candle view counts event starts: ``event_<type>`` for the market's own events of each type
and ``event_depeg_any`` for a depeg of any market on the venue at the same timeframe (a
stablecoin losing its peg moves every pair quoted in it). Strategies read these columns like
candle columns (:func:`quantdag.stages.common.read_candles` joins them); the ``market_events``
model feature group sums them over its periods.
"""

from __future__ import annotations

import polars as pl

from quantdag.data.frames import EVENT_TYPES, utc_ms

#: Per-candle event columns (Int32 counts of events starting at the candle).
EVENT_COLUMNS: tuple[str, ...] = (*(f"event_{t}" for t in EVENT_TYPES), "event_depeg_any")


def event_start_counts(ts: pl.Series, events: pl.DataFrame, symbol: str, timeframe: str) -> pl.DataFrame:
    """``ts`` plus :data:`EVENT_COLUMNS` for the candles ``ts`` of market ``symbol``/``timeframe``.

    ``events`` holds rows of ``market.events`` of the market's venue (any symbols and timeframes:
    only this timeframe's are used; other symbols only for ``event_depeg_any``).
    """
    frame = pl.DataFrame({"ts": ts})
    frame = frame.with_columns(utc_ms(frame, "ts"))
    starts = (
        events.filter(pl.col("timeframe") == timeframe)
        .with_columns(utc_ms(events, "ts_start").alias("ts"))
        .with_columns(
            own=pl.col("symbol") == symbol,
            col=pl.lit("event_") + pl.col("event_type"),
        )
    )
    own = starts.filter(pl.col("own")).group_by("ts", "col").len()
    depeg = starts.filter(pl.col("event_type") == "depeg").group_by("ts").len().with_columns(col=pl.lit("event_depeg_any"))
    counts = pl.concat([own, depeg.select("ts", "col", "len")])
    out = frame
    for c in EVENT_COLUMNS:
        n = counts.filter(pl.col("col") == c).select("ts", pl.col("len").alias(c))
        out = out.join(n, on="ts", how="left", maintain_order="left")
    return out.with_columns(pl.col(c).fill_null(0).cast(pl.Int32) for c in EVENT_COLUMNS)

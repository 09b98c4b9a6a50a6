"""Holes: runs of missing candles *between stored candles* that no window's cleaning saw.

Cleaning (:mod:`quantdag.data.clean`) finds and fills the missing candles inside the window it
is given. It cannot see what lies between windows: materialise one stray old day and then the
last few days, and ``market.candles`` holds two islands with weeks of nothing between them,
which every later stage would read as consecutive candles. Such a run of empty grid slots
between two stored candles of a market is a **hole**.

Decision: holes are recorded in ``market.gaps`` like any other run of missing candles, with
``filled = false`` (no synthetic candle stands in for them), but their rows are owned by the
market's *whole stored series*, not by a window:

* every ``candles`` run recomputes, for each market it writes, the holes of the series as it
  stands after the write (the stored candles outside the run's windows plus the run's own), and
  in the same transaction replaces all of that market's unfilled ``market.gaps`` rows that start
  after its first stored candle with them (:func:`quantdag.stages.market_data.normalize_candles`);
* an unfilled row before the first stored candle (a window's leading gap with no earlier candle
  known) stays owned by its window, as before.

Why not a window's slice: a hole's first missing candle lies in a day nobody materialised, so
whichever window wrote the row, a re-run of another window could neither replace nor remove it,
and the same hole could be written twice under different ``gap_start`` keys. Recomputed from the
series, the rows are a function of the stored candles alone: re-running any partition writes
the same table, the order in which days were materialised does not matter, a backfill of the
missing days leaves no hole row behind (a partial backfill splits the hole in two), and a
series that has no hole gets exactly the rows it had before. For the same reason a window's
leading missing candles are filled at the previous close only when the previous stored candle
is the one right before the window: a close from before a hole says nothing about the price
after it, so those candles belong to the hole.

A backtest refuses a series with a hole unless told to accept it
(:func:`quantdag.stages.backtests.run_backtests`), naming each hole with :func:`describe_holes`.
"""

from __future__ import annotations

import polars as pl

from quantdag.data.frames import GAPS_SCHEMA, MARKET_KEY, UTC_MS, empty_frame, require_columns, timeframe_steps
from quantdag.errors import DataError

#: How many holes an error message names before it says "and N more".
NAMED_HOLES = 3


def find_holes(candles: pl.DataFrame) -> pl.DataFrame:
    """Every run of missing grid slots between two consecutive candles of each market.

    Parameters
    ----------
    candles
        A frame with ``exchange``, ``symbol``, ``timeframe`` and ``ts`` (open time, a datetime;
        naive means UTC), one or more markets, in any order. Other columns are ignored.

    Returns
    -------
    pl.DataFrame
        A GAPS frame (:data:`quantdag.data.frames.GAPS_SCHEMA`) sorted by market and
        ``gap_start``: the first and last missing open time, ``missing`` candles, ``filled``
        false. Empty when every market's candles are consecutive. Missing candles before a
        market's first candle or after its last are not holes.

    Raises
    ------
    DataError
        If a column is missing, ``ts`` is not a datetime or has nulls, or a timeframe is unknown.
    """
    require_columns(candles, (*MARKET_KEY, "ts"), "candles")
    if not isinstance(candles.schema["ts"], pl.Datetime):
        raise DataError(f"candles column ts must be a datetime, got {candles.schema['ts']}")
    if candles["ts"].null_count():
        raise DataError(f"candles column ts has {candles['ts'].null_count()} null(s)")
    if candles.height < 2:
        return empty_frame(GAPS_SCHEMA)
    steps = timeframe_steps(candles["timeframe"])
    ts = pl.col("ts")
    ts = ts.dt.replace_time_zone("UTC") if candles.schema["ts"].time_zone is None else ts.dt.convert_time_zone("UTC")
    frame = (
        candles.select(*MARKET_KEY, ts.dt.epoch("ms").alias("t"))
        .unique()
        .sort([*MARKET_KEY, "t"])
        .with_columns(step=pl.col("timeframe").replace_strict(steps, return_dtype=pl.Int64))
        .with_columns(nxt=pl.col("t").shift(-1).over(MARKET_KEY))
        .filter(pl.col("nxt") - pl.col("t") > pl.col("step"))
    )
    return frame.select(
        *MARKET_KEY,
        (pl.col("t") + pl.col("step")).cast(UTC_MS).alias("gap_start"),
        (pl.col("nxt") - pl.col("step")).cast(UTC_MS).alias("gap_end"),
        ((pl.col("nxt") - pl.col("t")) // pl.col("step") - 1).alias("missing"),
        pl.lit(False).alias("filled"),
    ).cast(dict(GAPS_SCHEMA))


def describe_holes(holes: pl.DataFrame, *, limit: int = NAMED_HOLES) -> str:
    """The first ``limit`` holes of a GAPS frame in words: market, first and last missing candle, count.

    e.g. ``"sim:BTC/USDT:1h from 2026-10-23 00:00 to 2026-11-28 23:00 UTC (888 missing candles)"``.
    """
    parts = [
        f"{r['exchange']}:{r['symbol']}:{r['timeframe']} from {r['gap_start']:%Y-%m-%d %H:%M} "
        f"to {r['gap_end']:%Y-%m-%d %H:%M} UTC ({r['missing']} missing candle{'s' if r['missing'] != 1 else ''})"
        for r in holes.head(limit).iter_rows(named=True)
    ]
    if holes.height > limit:
        parts.append(f"and {holes.height - limit} more")
    return "; ".join(parts)

"""Market events: jumps, volume spikes, gaps, dislocations, depegs, regimes into ``market.events``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from quantdag.data import EVENTS_SCHEMA, MARKET_KEY, EventConfig, detect_events
from quantdag.markets import CANDLE_KEY, Market, Window
from quantdag.stages.common import StageReport
from quantdag.store import Slice, Warehouse
from quantdag.timeframes import timeframe_ms


def event_lookback_days(timeframes: Sequence[str], config: EventConfig | None = None) -> int:
    """Days of context that warm the events' rolling statistics for the finest of ``timeframes``."""
    if not timeframes:
        return 0
    finest = min(timeframe_ms(tf) for tf in timeframes)
    return -(-(config or EventConfig()).lookback_bars * finest // 86_400_000)


def build_events(wh: Warehouse, exchange: str, windows: Sequence[Window], config: EventConfig | None = None) -> StageReport:
    """Market events starting in each window, across every stored market of ``exchange``.

    An event that starts in the window and is still going at its last candle keeps its real end:
    candles after the window are read too (one day, then twice as far, up to the last stored
    candle) until every such event has ended. Detection is causal (:mod:`quantdag.data.events`),
    so reading ahead changes only those events' ends. An event still open at the last stored
    candle ends there until the window is materialised again with more data.
    """
    t0 = time.perf_counter()
    report = StageReport()
    writes: list[tuple[Window, pl.DataFrame]] = []
    stored = wh.query("SELECT DISTINCT timeframe FROM market.candles WHERE exchange = ?", [exchange])
    config = config or EventConfig()
    back = timedelta(days=event_lookback_days(stored["timeframe"].to_list(), config))
    last = wh.query("SELECT max(ts) AS ts FROM market.candles WHERE exchange = ?", [exchange])["ts"][0]
    for w in windows:
        events = _events_starting_in(wh, exchange, w, back, last, config)
        for row in events.group_by("symbol", "timeframe", "event_type").len().iter_rows(named=True):
            report.add(Market(exchange, row["symbol"], row["timeframe"]), **{row["event_type"]: row["len"]})
        writes.append((w, events))
    with wh.transaction() as con:
        for w, events in writes:
            report.rows_written += Warehouse.replace(
                con,
                "market.events",
                events,
                [Slice(where={"exchange": exchange}, time_column="ts_start", start=w[0], end=w[1])],
                order_by=("exchange", "symbol", "timeframe", "event_type", "ts_start"),
            )
    report.seconds = time.perf_counter() - t0
    return report


def _events_starting_in(
    wh: Warehouse, exchange: str, w: Window, back: timedelta, last: datetime | None, config: EventConfig
) -> pl.DataFrame:
    """:func:`build_events`' detection for one window, reading ahead while an event may go on."""
    gaps = wh.read("market.gaps", [Slice(where={"exchange": exchange}, time_column="gap_start", start=w[0], end=w[1])])
    ahead = timedelta(days=1)
    while True:
        end = w[1] + ahead
        candles = wh.read(
            "market.candles", [Slice(where={"exchange": exchange}, start=w[0] - back, end=end)], order_by=CANDLE_KEY
        )
        if not candles.height:
            return pl.DataFrame(schema=EVENTS_SCHEMA)
        events = detect_events(candles, gaps=gaps, config=config).filter((pl.col("ts_start") >= w[0]) & (pl.col("ts_start") < w[1]))
        series_end = candles.group_by(MARKET_KEY).agg(pl.col("ts").max().alias("series_end"))
        going_on = events.join(series_end, on=list(MARKET_KEY), how="left").filter(
            pl.col("ts_end") >= pl.col("series_end").fill_null(series_end["series_end"].min())
        )  # an implied market (e.g. a depeg's USDC/USD) has no series: the earliest end decides
        if going_on.height == 0 or last is None or end > last:
            return events
        ahead *= 2

"""Sentiment: feeds -> ``raw.news`` -> ``sentiment.items`` -> ``sentiment.bars``, a UTC day at a time.

Each function fetches or computes everything first and writes its slices in ONE transaction, so
a bad feed (a :class:`~quantdag.sentiment.feeds.FeedError` naming the value) or an unavailable
one writes nothing, and a re-run gives the same tables. A day's partition of ``raw.news`` and
``sentiment.items`` is the versions *fetched* that day; a day's ``sentiment.bars`` are the
candles that opened that day, each from the items it could have known at its close.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import polars as pl

from quantdag.markets import Market, Window
from quantdag.sentiment import score
from quantdag.sentiment.bars import BarSettings, sentiment_bars
from quantdag.sentiment.entities import EntityMap
from quantdag.sentiment.feeds import RAW_NEWS_SCHEMA, FeedError, new_versions
from quantdag.sentiment.items import DEDUP_HORIZON, ITEMS_SCHEMA, build_items
from quantdag.sentiment.sources import NewsSource
from quantdag.stages.common import StageReport, market_slice
from quantdag.store import Slice, Warehouse
from quantdag.timeframes import timeframe_ms

NEWS_ORDER = ("feed", "fetched_at", "item_id", "revision")


def _feed_market(feed: str) -> Market:
    """A report row per feed (the report is keyed by market)."""
    return Market("feed", f"{feed}/news", "1d")


def ingest_news(wh: Warehouse, sources: Sequence[NewsSource], windows: Sequence[Window], *, now: datetime | None = None) -> StageReport:
    """Versions of every source for ``windows`` into ``raw.news``.

    An archive source replaces each window's rows of its feed with what it answers for that window
    (so a re-run is identical); a live source is read once, if a window contains now, and only the
    versions not stored yet are added (:func:`~quantdag.sentiment.feeds.new_versions`).

    Raises
    ------
    FeedError
        A malformed answer, or an archive version outside the window asked for; nothing written.
    FeedUnavailable
        A feed still failing after its retries; nothing written.
    """
    t0 = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    report = StageReport()
    replaces: list[tuple[pl.DataFrame, Slice]] = []
    inserts: list[pl.DataFrame] = []
    for src in sources:
        if src.archive:
            for w in windows:
                frame = src.fetch(w[0], w[1], now) if w[0] < now else pl.DataFrame(schema=RAW_NEWS_SCHEMA)
                outside = frame.filter((pl.col("fetched_at") < w[0]) | (pl.col("fetched_at") >= w[1]))
                if outside.height:
                    r = outside.row(0, named=True)
                    raise FeedError(f"feed {src.name!r}: item {r['item_id']!r} fetched_at {r['fetched_at']} is outside "
                                    f"the window asked for [{w[0]}, {w[1]})")  # fmt: skip
                frame = frame.unique(["feed", "item_id", "revision"], keep="first", maintain_order=True)
                replaces.append((frame, Slice(where={"feed": src.name}, time_column="fetched_at", start=w[0], end=w[1])))
                report.add(_feed_market(src.name), versions=frame.height)
        elif any(w[0] <= now < w[1] for w in windows):
            fetched = src.fetch(now, now, now).unique(["feed", "item_id"], keep="last", maintain_order=True)
            stored = wh.query(
                "SELECT feed, item_id, max(revision) AS revision, arg_max(title, revision) AS title "
                "FROM raw.news WHERE feed = ? GROUP BY ALL", [src.name],
            )  # fmt: skip
            fresh = new_versions(fetched, stored)
            inserts.append(fresh)
            report.add(_feed_market(src.name), versions=fresh.height)
    with wh.transaction() as con:
        for frame, s in replaces:
            report.rows_written += Warehouse.replace(con, "raw.news", frame, [s], order_by=NEWS_ORDER)
        for frame in inserts:
            report.rows_written += Warehouse.insert(con, "raw.news", frame.sort(list(NEWS_ORDER)))
    report.seconds = time.perf_counter() - t0
    return report


def _stored_items(wh: Warehouse, start: datetime, end: datetime, item_ids: Sequence[str]) -> pl.DataFrame:
    """Items fetched in ``[start, end)``, plus every earlier-stored version of ``item_ids``."""
    frame = wh.query(
        "SELECT * FROM sentiment.items WHERE fetched_at < ? AND (fetched_at >= ? OR item_id IN (SELECT unnest(?::VARCHAR[])))",
        [end, start, list(item_ids)],
    )
    return frame.select(list(ITEMS_SCHEMA)).cast(ITEMS_SCHEMA) if frame.height else pl.DataFrame(schema=ITEMS_SCHEMA)


def score_news(
    wh: Warehouse, markets: Sequence[Market], windows: Sequence[Window], *, dedup_threshold: float = 0.7
) -> StageReport:
    """Score the ``raw.news`` versions fetched in each window into ``sentiment.items``.

    Assets come from the universe of ``markets`` (every base and quote asset). Near-duplicates
    are judged against the stories known in the ``DEDUP_HORIZON`` before each (stored, or computed
    earlier in this run), so a backfill and day-by-day runs mark the same ones.
    """
    t0 = time.perf_counter()
    report = StageReport()
    entities = EntityMap.for_markets(markets)
    computed: list[pl.DataFrame] = []
    writes: list[tuple[pl.DataFrame, Slice]] = []
    for w in sorted(windows):
        raw = wh.read("raw.news", [Slice(time_column="fetched_at", start=w[0], end=w[1])], order_by=NEWS_ORDER)
        ids = raw["item_id"].unique().to_list()
        earlier = _stored_items(wh, w[0] - DEDUP_HORIZON - timedelta(days=1), w[0], ids)  # a day's margin: known >= fetched
        if computed:
            earlier = pl.concat([earlier, *computed])
        items = build_items(raw, entities, score, earlier=earlier, dedup_threshold=dedup_threshold)
        computed.append(items)
        writes.append((items, Slice(time_column="fetched_at", start=w[0], end=w[1])))
        for asset, n, dups in items.group_by("asset").agg(pl.len(), pl.col("duplicate_of").is_not_null().sum()).iter_rows():
            report.add(Market("items", f"{asset}/*", "1d"), items=n, duplicates=dups)
    with wh.transaction() as con:
        for frame, s in writes:
            report.rows_written += Warehouse.replace(con, "sentiment.items", frame, [s],
                                                     order_by=("fetched_at", "feed", "item_id", "revision", "asset"))  # fmt: skip
    report.seconds = time.perf_counter() - t0
    return report


def _items_for_bars(wh: Warehouse, asset: str, start: datetime, end: datetime) -> pl.DataFrame:
    """Every version, known before ``end``, of the ``asset`` items first known at or after ``start``."""
    frame = wh.query(
        "WITH v AS (SELECT *, greatest(published_at, fetched_at) AS known, "
        "min(greatest(published_at, fetched_at)) OVER (PARTITION BY feed, item_id) AS first_known "
        "FROM sentiment.items WHERE asset = ?) "
        "SELECT * EXCLUDE (known, first_known) FROM v WHERE first_known >= ? AND known < ?",
        [asset, start, end],
    )
    return frame.select(list(ITEMS_SCHEMA)).cast(ITEMS_SCHEMA) if frame.height else pl.DataFrame(schema=ITEMS_SCHEMA)


def build_sentiment_bars(
    wh: Warehouse, markets: Sequence[Market], windows: Sequence[Window], *, window_hours: float = 6.0, half_life_hours: float = 6.0
) -> StageReport:
    """``sentiment.bars`` for every stored candle of ``markets`` in each window (:func:`~quantdag.sentiment.bars.sentiment_bars`
    with a :class:`~quantdag.sentiment.bars.BarSettings` of ``window_hours`` and ``half_life_hours``)."""
    t0 = time.perf_counter()
    settings = BarSettings(window_hours=window_hours, half_life_hours=half_life_hours)
    report = StageReport()
    writes: list[tuple[pl.DataFrame, Slice]] = []
    lookback = timedelta(milliseconds=settings.lookback_ms)
    for m in markets:
        tf = timeframe_ms(m.timeframe)
        for w in windows:
            candles = wh.read("market.candles", [market_slice(m, w)], order_by=("ts",))
            items = _items_for_bars(wh, m.base, w[0] - lookback, w[1])
            bars = sentiment_bars(candles, items, tf, settings)
            writes.append((bars, market_slice(m, w)))
            report.add(m, bars=bars.height, with_items=int((bars["sent_count"] > 0).sum()) if bars.height else 0)
    with wh.transaction() as con:
        for frame, s in writes:
            report.rows_written += Warehouse.replace(con, "sentiment.bars", frame, [s], order_by=("ts",))
    report.seconds = time.perf_counter() - t0
    return report


def lookback_days(window_hours: float = 6.0, half_life_hours: float = 6.0) -> int:
    """Earlier daily partitions of ``sentiment.items`` a day's bars read (items still counting at its first close)."""
    ms = BarSettings(window_hours=window_hours, half_life_hours=half_life_hours).lookback_ms
    return -(-ms // 86_400_000)


def index_assets(markets: Sequence[Market], stablecoins: Sequence[str]) -> tuple[str, ...]:
    """The assets a market-wide index (Fear & Greed) speaks for: the universe's bases that are not stablecoins."""
    stable = set(stablecoins)
    return tuple(sorted({m.base for m in markets} - stable))

"""Feed bodies -> rows of ``raw.news``: the simulator's JSON archive, RSS/Atom (feedparser), Fear & Greed.

Every parser checks every item before returning anything: one bad item (no id, an unparseable
date, a title that is not text) is a :class:`FeedError` naming the feed, the item and the value,
so the stage writes nothing rather than part of a page.

Two timestamps per version. ``published_at`` is what the feed says. ``fetched_at`` is when we
first had it: for a live RSS/Atom feed or the index, the moment of our own request (a live feed
has no past we could have read earlier); for an archive that records when each version appeared
(the simulator's JSON, which plays a poller that ran all along), the archive's time. A candle
sees a version only if both are before its close (:mod:`quantdag.sentiment.bars`).
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import polars as pl

from quantdag.data.frames import UTC_MS
from quantdag.errors import DataError, QuantdagError

#: Columns of ``raw.news`` (``sql/create_raw_news.sql``); key (feed, item_id, revision).
RAW_NEWS_SCHEMA: dict[str, pl.DataType] = {
    "feed": pl.String(), "source": pl.String(), "item_id": pl.String(), "revision": pl.Int32(), "kind": pl.String(),
    "published_at": UTC_MS, "fetched_at": UTC_MS, "title": pl.String(), "url": pl.String(),
    "assets": pl.List(pl.String()), "deleted": pl.Boolean(), "value": pl.Float64(),
}  # fmt: skip


class FeedError(DataError):
    """A feed answered something we cannot store: malformed body or item, naming the value."""


class FeedUnavailable(QuantdagError):
    """A feed kept failing (5xx, timeouts, refused connections) after the bounded retries."""


def empty_news() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_NEWS_SCHEMA)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RAW_NEWS_SCHEMA) if rows else empty_news()


def parse_time(value: Any, feed: str, item: str, field: str) -> datetime:
    """A timezone-aware UTC datetime from ISO 8601 text (``Z`` allowed) or epoch seconds.

    Raises
    ------
    FeedError
        Naming the feed, the item, the field and the value.
    """
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        if isinstance(value, str):
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    raise FeedError(f"feed {feed!r}: item {item!r} has an unreadable {field} {value!r:.80}")


def _text(value: Any, feed: str, item: str, field: str, *, required: bool = True) -> str:
    if isinstance(value, str) and (value.strip() or not required):
        return value
    if value is None and not required:
        return ""
    raise FeedError(f"feed {feed!r}: item {item!r} has no usable {field} ({value!r:.80})")


def _json(body: bytes, feed: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"feed {feed!r}: body is not JSON ({exc}); it starts {body[:60]!r}") from None


def parse_json_feed(body: bytes, feed: str) -> pl.DataFrame:
    """Versions of the simulator's ``/news/feed.json`` archive (``{"items": [...]}``)."""
    data = _json(body, feed)
    items = data.get("items") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise FeedError(f"feed {feed!r}: expected an object with an 'items' list, got {str(data)[:80]!r}")
    rows = []
    for i, it in enumerate(items):
        if not isinstance(it, Mapping):
            raise FeedError(f"feed {feed!r}: item #{i} is not an object: {it!r:.80}")
        item_id = _text(it.get("id"), feed, f"#{i}", "id")
        revision = it.get("revision", 0)
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise FeedError(f"feed {feed!r}: item {item_id!r} has a bad revision {revision!r}")
        assets = it.get("assets") or []
        if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
            raise FeedError(f"feed {feed!r}: item {item_id!r} has bad assets {assets!r:.80}")
        deleted = it.get("deleted", False)
        if not isinstance(deleted, bool):
            raise FeedError(f"feed {feed!r}: item {item_id!r} has a non-boolean deleted {deleted!r}")
        rows.append({
            "feed": feed, "source": _text(it.get("source") or feed, feed, item_id, "source"), "item_id": item_id,
            "revision": revision, "kind": _text(it.get("kind") or "news", feed, item_id, "kind"),
            "published_at": parse_time(it.get("published_at"), feed, item_id, "published_at"),
            "fetched_at": parse_time(it.get("fetched_at"), feed, item_id, "fetched_at"),
            "title": _text(it.get("title"), feed, item_id, "title", required=not deleted),
            "url": _text(it.get("url"), feed, item_id, "url", required=False), "assets": assets,
            "deleted": deleted, "value": None,
        })  # fmt: skip
    return _frame(rows)


def parse_rss(body: bytes, feed: str, fetched_at: datetime) -> pl.DataFrame:
    """Items of an RSS 2.0 / Atom document (feedparser), each revision 0, fetched at ``fetched_at``.

    Whether an item is new or a revision of one stored before is decided against the warehouse
    by the stage (:func:`new_versions`), since a live feed shows only its latest text.
    """
    import feedparser  # imported here: only the live path and its tests need it

    parsed = feedparser.parse(body)
    if parsed.bozo and not parsed.entries:
        raise FeedError(f"feed {feed!r}: not an RSS/Atom document ({parsed.get('bozo_exception')!r:.120})")
    rows = []
    for i, e in enumerate(parsed.entries):
        item_id = _text(e.get("id") or e.get("link"), feed, f"#{i}", "id (guid or link)")
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        if stamp is None:
            raw = e.get("published") or e.get("updated")
            raise FeedError(f"feed {feed!r}: item {item_id!r} has an unreadable published date {raw!r:.80}")
        rows.append({
            "feed": feed, "source": str(e.get("author") or parsed.feed.get("title") or feed), "item_id": item_id,
            "revision": 0, "kind": "news", "published_at": datetime.fromtimestamp(calendar.timegm(stamp), tz=timezone.utc),
            "fetched_at": fetched_at, "title": _text(e.get("title"), feed, item_id, "title"), "url": str(e.get("link") or ""),
            "assets": [str(t.get("term")) for t in e.get("tags", []) if t.get("term")], "deleted": False, "value": None,
        })  # fmt: skip
    return _frame(rows)


def parse_fear_greed(body: bytes, feed: str, fetched_at: datetime, assets: Sequence[str]) -> pl.DataFrame:
    """Days of the Crypto Fear & Greed index (alternative.me's ``/fng/`` shape) as index items.

    ``value`` is the index (0 extreme fear .. 100 extreme greed); it applies to every one of
    ``assets`` (the market as a whole). A day's value is published at its ``timestamp``.
    """
    data = _json(body, feed)
    rows_in = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(rows_in, list):
        raise FeedError(f"feed {feed!r}: expected an object with a 'data' list, got {str(data)[:80]!r}")
    rows = []
    for i, r in enumerate(rows_in):
        if not isinstance(r, Mapping):
            raise FeedError(f"feed {feed!r}: entry #{i} is not an object: {r!r:.80}")
        try:
            value, ts = float(r["value"]), int(r["timestamp"])
        except (KeyError, TypeError, ValueError):
            raise FeedError(f"feed {feed!r}: entry #{i} needs numeric value and timestamp, got {dict(r)!r:.120}") from None
        if not 0 <= value <= 100:
            raise FeedError(f"feed {feed!r}: entry #{i} value {value!r} is outside 0..100")
        published = parse_time(ts, feed, f"#{i}", "timestamp")
        rows.append({
            "feed": feed, "source": feed, "item_id": f"fng-{ts}", "revision": 0, "kind": "index",
            "published_at": published, "fetched_at": max(fetched_at, published),
            "title": f"Fear and Greed Index {value:g} ({r.get('value_classification', '')})", "url": "",
            "assets": list(assets), "deleted": False, "value": value,
        })  # fmt: skip
    return _frame(rows)


def new_versions(fetched: pl.DataFrame, stored_latest: pl.DataFrame) -> pl.DataFrame:
    """Of a live fetch, the versions worth storing: items never seen, and items whose title changed
    since their latest stored version (stored as the next revision). Re-fetching an unchanged feed
    stores nothing, so a live ingest is idempotent.

    ``stored_latest``: (feed, item_id, revision, title) of each item's latest stored version.
    """
    if fetched.height == 0:
        return fetched
    joined = fetched.join(
        stored_latest.select("feed", "item_id", pl.col("revision").alias("_rev"), pl.col("title").alias("_title")),
        on=["feed", "item_id"], how="left",
    )  # fmt: skip
    fresh = joined.filter(pl.col("_rev").is_null() | (pl.col("_title") != pl.col("title")))
    return fresh.with_columns(revision=(pl.col("_rev") + 1).fill_null(0).cast(pl.Int32)).select(list(RAW_NEWS_SCHEMA))

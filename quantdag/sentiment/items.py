"""Raw feed versions -> scored items: one row per version and asset, near-duplicates marked.

An item's assets are the feed's own tags that belong to the universe plus those the text names
(:mod:`.entities`). A version is scored from its title (:func:`quantdag.sentiment.score`); an
index reading (Fear & Greed) maps 0..100 to -1..1; a deletion has no score. The first version of
an item is compared, per asset, with the stories of the same asset known in the
:data:`DEDUP_HORIZON` before it (this window's and the ``earlier`` ones); a near-duplicate records the key of the first copy in ``duplicate_of``,
and every later version of the item keeps that verdict, so a story counts once however many
outlets carry it and however often it is revised.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import timedelta

import polars as pl

from quantdag.sentiment.dedup import NearDuplicates
from quantdag.sentiment.entities import EntityMap
from quantdag.sentiment.feeds import UTC_MS

#: Columns of ``sentiment.items`` (``sql/create_sentiment_items.sql``); key (feed, item_id, revision, asset).
ITEMS_SCHEMA: dict[str, pl.DataType] = {
    "feed": pl.String(), "source": pl.String(), "item_id": pl.String(), "revision": pl.Int32(), "kind": pl.String(),
    "asset": pl.String(), "published_at": UTC_MS, "fetched_at": UTC_MS, "title": pl.String(),
    "score": pl.Float64(), "deleted": pl.Boolean(), "duplicate_of": pl.String(),
}  # fmt: skip


#: A story repeats an earlier one only if that one became known at most this long before it: a
#: backfill and day-by-day runs then judge alike (each day's run sees the stories of the 2 days before).
DEDUP_HORIZON = timedelta(days=2)


def item_key(feed: str, item_id: str) -> str:
    return f"{feed}:{item_id}"


def build_items(
    raw: pl.DataFrame,
    entities: EntityMap,
    scorer: Callable[[Sequence[str]], list[float]],
    *,
    earlier: pl.DataFrame | None = None,
    dedup_threshold: float = 0.7,
) -> pl.DataFrame:
    """Scored item rows of ``raw`` (``raw.news`` rows).

    Parameters
    ----------
    earlier
        ``sentiment.items`` rows stored before (the previous days, and any stored version of this
        window's items): the stories a new one may repeat, and the assets and duplicate verdicts
        that later versions and deletions of stored items inherit.
    """
    earlier = earlier if earlier is not None else pl.DataFrame(schema=ITEMS_SCHEMA)
    if raw.height == 0:
        return pl.DataFrame(schema=ITEMS_SCHEMA)
    raw = raw.with_columns(known=pl.max_horizontal("published_at", "fetched_at")).sort("known", "feed", "item_id", "revision")
    universe = set(entities.assets)
    stored_assets: dict[tuple[str, str], list[str]] = {}
    for r in earlier.select("feed", "item_id", "asset").unique().iter_rows():
        stored_assets.setdefault((r[0], r[1]), []).append(r[2])
    rows_assets, first_assets = [], {}
    for feed, item_id, title, tags, kind in raw.select("feed", "item_id", "title", "assets", "kind").iter_rows():
        found = {a for a in (tags or []) if a in universe}
        if kind != "index" and title:
            found.update(entities.tag(title))
        if not found:  # a deletion or a reworded revision that names no asset: the item's assets so far
            found = set(first_assets.get((feed, item_id)) or stored_assets.get((feed, item_id), []))
        first_assets.setdefault((feed, item_id), sorted(found))
        rows_assets.append(sorted(found))
    texts = [t if (k != "index" and not d and t) else "" for t, k, d in raw.select("title", "kind", "deleted").iter_rows()]
    scores = scorer(texts)
    scored = raw.with_columns(
        asset=pl.Series(rows_assets, dtype=pl.List(pl.String())),
        score=pl.when(pl.col("deleted")).then(None)
        .when(pl.col("kind") == "index").then((pl.col("value") - 50.0) / 50.0)
        .otherwise(pl.Series(scores, dtype=pl.Float64)),
    ).explode("asset").filter(pl.col("asset").is_not_null())  # fmt: skip
    return _mark_duplicates(scored, earlier, dedup_threshold).select(list(ITEMS_SCHEMA)).cast(ITEMS_SCHEMA)


def _mark_duplicates(scored: pl.DataFrame, earlier: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """``duplicate_of`` for every row of ``scored`` (sorted by ``known``), judged per asset against
    the stories known within :data:`DEDUP_HORIZON` before it, in ``earlier`` or earlier in ``scored``."""
    horizon = int(DEDUP_HORIZON.total_seconds() * 1000)
    verdict: dict[tuple[str, str, str], str | None] = {
        (r["feed"], r["item_id"], r["asset"]): r["duplicate_of"]
        for r in earlier.filter(pl.col("revision") == 0).iter_rows(named=True)
    }
    # per asset: the detector, each text's first copy (its own key or the one it repeats), when each became known
    seen: dict[str, tuple[NearDuplicates, list[str], list[int]]] = {}

    def judge(asset: str, title: str, own_key: str, known_ms: int, dup_of: str | None = None, *, decided: bool = False) -> str | None:
        nd, keys, knowns = seen.setdefault(asset, (NearDuplicates(threshold), [], []))
        first = nd.add(title, since=bisect_left(knowns, known_ms - horizon))
        if not decided:
            dup_of = None if first is None else keys[first]
        keys.append(dup_of or own_key)
        knowns.append(known_ms)
        return dup_of

    known = pl.max_horizontal(pl.col("published_at").dt.epoch("ms"), pl.col("fetched_at").dt.epoch("ms"))
    prior = earlier.filter((pl.col("revision") == 0) & (pl.col("kind") != "index")).with_columns(_known=known)
    for r in prior.sort("_known", "feed", "item_id").iter_rows(named=True):
        judge(r["asset"], r["title"] or "", item_key(r["feed"], r["item_id"]), r["_known"], r["duplicate_of"], decided=True)
    out: list[str | None] = []
    rows = scored.with_columns(_known=known).select("feed", "item_id", "asset", "title", "kind", "_known")
    for r in rows.iter_rows(named=True):
        k = (r["feed"], r["item_id"], r["asset"])
        if k not in verdict:  # else: a later version of an item already judged keeps its verdict
            verdict[k] = None if r["kind"] == "index" else judge(r["asset"], r["title"] or "", item_key(r["feed"], r["item_id"]), r["_known"])
        out.append(verdict[k])
    return scored.with_columns(duplicate_of=pl.Series(out, dtype=pl.String()))

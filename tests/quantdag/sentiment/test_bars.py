"""Point in time: a candle sees an item only if it was both published and fetched before the candle
closed; a revision or deletion changes the candles after it was fetched, never the earlier ones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quantdag.sentiment.bars import BarSettings, sentiment_bars
from quantdag.sentiment.items import ITEMS_SCHEMA

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOUR = 3_600_000


def at(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def _item(item_id: str, revision: int, published: float, fetched: float, score: float | None, *, deleted: bool = False,
          duplicate_of: str | None = None, asset: str = "BTC") -> dict:
    return {"feed": "f", "source": "wire", "item_id": item_id, "revision": revision, "kind": "news", "asset": asset,
            "published_at": at(published), "fetched_at": at(fetched), "title": item_id, "score": score,
            "deleted": deleted, "duplicate_of": duplicate_of}  # fmt: skip


ITEMS = [
    _item("A", 0, 0.5, 0 + 40 / 60, 0.8),           # known 00:40
    _item("B", 0, 50 / 60, 2 + 10 / 60, -0.6),      # published 00:50 but fetched late, 02:10
    _item("A", 1, 0.5, 3.5, -0.2),                  # A revised, fetched 03:30
    _item("C", 0, 1.0, 1 + 5 / 60, 0.4),            # published exactly at 01:00
    _item("C", 1, 1.0, 4 + 20 / 60, None, deleted=True),  # C deleted at 04:20
    _item("D", 0, 3 + 10 / 60, 3.0, 0.5),           # fetched 03:00, stamped 03:10 by its feed: known 03:10
    _item("E", 0, 0.6, 0.7, 0.9, duplicate_of="f:A"),  # a copy of A: never counted
    _item("Z", 0, 0.2, 0.3, -0.9, asset="ETH"),     # another asset
]


def _candles(n: int = 6) -> pl.DataFrame:
    return pl.DataFrame({"exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "ts": [at(h) for h in range(n)]}).with_columns(
        pl.col("ts").dt.cast_time_unit("ms")
    )


def _bars(items: list[dict], settings: BarSettings = BarSettings(window_hours=24, half_life_hours=6)) -> pl.DataFrame:
    return sentiment_bars(_candles(), pl.DataFrame(items, schema=ITEMS_SCHEMA), HOUR, settings)


def test_candle_sees_only_items_published_and_fetched_before_its_close() -> None:
    bars = _bars(ITEMS)
    # ts 00 (close 01:00): A only (C is published AT the close, B fetched later, E a duplicate, Z another asset)
    # ts 01: A, C; ts 02 (close 03:00): B arrives; ts 03: D and A's revision; ts 04: C deleted
    assert bars["sent_count"].to_list() == [1, 2, 3, 4, 3, 3]
    means = bars["sent_mean"].to_list()
    assert means[0] == pytest.approx(0.8)
    assert means[1] == pytest.approx((0.8 + 0.4) / 2)
    assert means[2] == pytest.approx((0.8 + 0.4 - 0.6) / 3)
    assert means[3] == pytest.approx((-0.2 + 0.4 - 0.6 + 0.5) / 4)
    assert means[4] == pytest.approx((-0.2 - 0.6 + 0.5) / 3)
    assert bars["sent_dispersion"][0] == 0.0
    w = 0.5 ** ((1 - 40 / 60) / 6)
    assert bars["sent_decayed"][0] == pytest.approx(w * 0.8 / (1 + w))
    assert set(bars["asset"]) == {"BTC"}


def test_revision_and_deletion_never_change_earlier_candles() -> None:
    before_revisions = [i for i in ITEMS if i["revision"] == 0]
    full, early = _bars(ITEMS), _bars(before_revisions)
    # the revision of A (03:30) and deletion of C (04:20) first show on the candle closing at 04:00 / 05:00
    assert full.head(3).equals(early.head(3))
    assert not full.slice(3, 1).equals(early.slice(3, 1))


def test_late_fetch_is_invisible_until_fetched_even_though_published_earlier() -> None:
    only_b = [i for i in ITEMS if i["item_id"] == "B"]
    assert _bars(only_b)["sent_count"].to_list() == [0, 0, 1, 1, 1, 1]


def test_window_limits_counts_and_decay_fades_old_items() -> None:
    bars = _bars([ITEMS[0]], BarSettings(window_hours=2, half_life_hours=1))
    assert bars["sent_count"].to_list() == [1, 1, 0, 0, 0, 0]  # A known at 00:40 leaves the 2 h window after 02:40
    assert bars["sent_mean"][2] is None and bars["sent_dispersion"][2] is None
    decayed = bars["sent_decayed"].to_list()
    assert decayed[0] > decayed[1] > decayed[2] > decayed[5] > 0


def test_no_items_gives_zero_counts_and_decay() -> None:
    bars = _bars([])
    assert bars["sent_count"].to_list() == [0] * 6 and bars["sent_decayed"].to_list() == [0.0] * 6

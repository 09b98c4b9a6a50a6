"""The live feed: an event within a second of a new candle, fill or alert being stored."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from quantdag.dashboard.live import LiveFeed
from quantdag.dashboard.reader import Reader
from quantdag.store import Warehouse

from .seed import T0, candle_rows, fill_row


async def _next_event(feed: LiveFeed, timeout: float = 2.0) -> tuple[dict | None, float]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        event = await feed.poll_once()
        if event is not None:
            return event, time.monotonic() - t0
        await asyncio.sleep(feed.poll_interval)
    return None, timeout


def test_feed_reports_each_new_candle_and_fill_within_a_second(writable_db):
    feed = LiveFeed(Reader(writable_db, lock_timeout=0.2), poll_interval=0.1)

    async def scenario() -> list:
        assert await feed.poll_once() is None  # the first look only learns the marks
        assert await feed.poll_once() is None  # nothing changed: the file is not even opened
        out = []
        for table, row in (("market.candles", candle_rows("BTC/USDT", 1, start=T0 + timedelta(days=3))[0]),
                           ("paper.fills", fill_row(99, T0 + timedelta(days=3)))):  # fmt: skip
            with Warehouse(writable_db, lock_timeout=5).transaction() as con:
                Warehouse.insert(con, table, [row])
            out.append(await _next_event(feed))
        return out

    (candle, dt_candle), (fill, dt_fill) = asyncio.run(scenario())
    assert candle is not None and candle["changed"] == ["candle"] and candle["candle"].startswith("2026-11-04")
    assert fill is not None and fill["changed"] == ["fill"]
    assert dt_candle < 1.0 and dt_fill < 1.0


def test_feed_on_a_missing_warehouse_stays_quiet(tmp_path):
    feed = LiveFeed(Reader(tmp_path / "none.duckdb"), poll_interval=0.1)
    assert asyncio.run(feed.poll_once()) is None
    assert feed.marks == {"candle": None, "fill": None, "alert": None}

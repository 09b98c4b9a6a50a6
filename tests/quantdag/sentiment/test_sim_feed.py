"""The simulator's feed over HTTP into the sentiment tables: seeded, late, revised, duplicated, panicking
on a depeg, leading returns a little; idempotent stages; faults refused whole or retried."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.markets import Market
from quantdag.sentiment import score
from quantdag.sentiment.feeds import FeedError
from quantdag.sentiment.sources import ArchiveJsonSource, HttpPolicy
from quantdag.sim.news import NewsFeed
from quantdag.stages.sentiment import build_sentiment_bars, ingest_news, score_news
from quantdag.store import Warehouse

DAY = timedelta(days=1)
FAST = HttpPolicy(timeout_s=5.0, retries=2, backoff_s=0.01)


def _days(n: int, back: int = 1) -> list[tuple[datetime, datetime]]:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return [(today - (back + n - 1 - i) * DAY, today - (back + n - 2 - i) * DAY) for i in range(n)]


def _source(sim) -> ArchiveJsonSource:
    return ArchiveJsonSource("sim", f"{sim.url}/news/feed.json", FAST)


def test_feed_is_seeded_late_revised_and_tagged(sim) -> None:
    now = sim.model.now_ms()
    lo = now - 20 * 86_400_000
    a, b = NewsFeed(sim.model).versions(lo, now), NewsFeed(sim.model).versions(lo, now)
    assert a == b and len(a) > 500
    late = [v for v in a if v["fetched_ms"] - v["published_ms"] > 3_600_000 and v["revision"] == 0]
    assert late, "some items reach the poller hours after publication"
    assert any(v["revision"] > 0 and v["deleted"] for v in a) and any(v["revision"] > 0 and not v["deleted"] for v in a)
    assert {s for v in a for s in [v["source"]]} >= {"wire", "cryptodesk", "social", "aggregator"}
    assert all(v["assets"] for v in a)


def test_feed_tone_leads_the_models_returns_a_little(sim) -> None:
    now = sim.model.now_ms()
    lo = now - 60 * 86_400_000
    wire = [v for v in NewsFeed(sim.model).versions(lo, now) if v["source"] == "wire" and v["revision"] == 0 and v["assets"] == ["BTC"]]
    k = sim.model.klines("BTC/USDT", "1h", lo - 86_400_000)
    closes = dict(zip(k["open_time"].to_list(), k["close"].to_list(), strict=True))
    fwd, s = [], score([v["title"] for v in wire])
    for v in wire:
        h = v["published_ms"] // 3_600_000 * 3_600_000
        if h - 3_600_000 in closes and h + 5 * 3_600_000 in closes:
            fwd.append(np.log(closes[h + 5 * 3_600_000] / closes[h - 3_600_000]))
        else:
            fwd.append(np.nan)
    ok = ~np.isnan(fwd)
    corr = np.corrcoef(np.array(s)[ok], np.array(fwd)[ok])[0, 1]
    assert 0.05 < corr < 0.5, corr  # partly leading (a faint edge), mostly noise


def test_depeg_episode_brings_panic_about_usdc(sim) -> None:
    ep = sim.model.depeg_episodes("USDC/USDT")[0]
    versions = NewsFeed(sim.model).versions(ep.start_ms, ep.trough_ms + 6 * 3_600_000)
    panic = [v["title"] for v in versions if v["assets"] == ["USDC"]]
    assert len(panic) >= 5
    assert np.mean(score(panic)) < -0.4


def test_archive_ingest_and_scoring_are_idempotent_and_revisions_never_change_earlier_bars(tmp_path, sim) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    days = _days(3)
    markets = [Market("sim", "BTC/USDT", "1h")]
    candles = pl.DataFrame({"exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h",
                            "ts": pl.datetime_range(days[0][0], days[-1][1], "1h", closed="left", eager=True)})  # fmt: skip
    k = sim.model.klines("BTC/USDT", "1h", int(days[0][0].timestamp() * 1000), int(days[-1][1].timestamp() * 1000))
    candles = candles.with_columns(open=k["open"], high=k["high"], low=k["low"], close=k["close"], volume=k["volume"], filled=False,
                                   ts=pl.col("ts").dt.cast_time_unit("ms"))  # fmt: skip
    with wh.transaction() as con:
        Warehouse.insert(con, "market.candles", candles)
    ingest_news(wh, [_source(sim)], days[:2])
    score_news(wh, markets, days[:2])
    build_sentiment_bars(wh, markets, days[:2])
    keys = {"raw.news": ("feed", "item_id", "revision"), "sentiment.items": ("feed", "item_id", "revision", "asset"),
            "sentiment.bars": ("exchange", "symbol", "timeframe", "ts")}  # fmt: skip
    first = {t: wh.table_hash(t, k) for t, k in keys.items()}
    ingest_news(wh, [_source(sim)], days[:2])
    score_news(wh, markets, days[:2])
    build_sentiment_bars(wh, markets, days[:2])
    assert {t: wh.table_hash(t, k) for t, k in keys.items()} == first
    assert wh.query("SELECT count(*) AS n FROM sentiment.bars WHERE sent_count > 0")["n"][0] > 10
    # the next day brings revisions and deletions of the earlier days' items: the earlier bars, rebuilt, stay the same
    bars_before = wh.read("sentiment.bars", order_by=("ts",))
    ingest_news(wh, [_source(sim)], days[2:])
    score_news(wh, markets, days[2:])
    build_sentiment_bars(wh, markets, days)
    assert wh.read("sentiment.bars", order_by=("ts",)).head(bars_before.height).equals(bars_before)
    dups = wh.query("SELECT count(*) AS n FROM sentiment.items WHERE duplicate_of LIKE 'sim:wire-%'")["n"][0]
    assert dups > 0  # the aggregator's copies of wire stories count once


def test_malformed_item_fault_is_refused_naming_the_value_and_nothing_is_written(tmp_path, sim) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    sim.inject("malformed_item", path="/news/feed.json")
    try:
        with pytest.raises(FeedError, match="unreadable published_at 'yesterday-ish'"):
            ingest_news(wh, [_source(sim)], _days(1))
    finally:
        sim.faults = None
    assert wh.query("SELECT count(*) AS n FROM raw.news")["n"][0] == 0


def test_server_error_and_malformed_json_faults_are_retried_or_refused(tmp_path, sim) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    sim.inject("server_error", count=2, path="/news/feed.json")
    try:
        assert ingest_news(wh, [_source(sim)], _days(1)).rows_written > 0
        sim.inject("malformed_json", path="/news/feed.json")
        with pytest.raises(FeedError, match="body is not JSON"):
            ingest_news(wh, [_source(sim)], _days(1, back=2))
    finally:
        sim.faults = None


def test_sim_rss_endpoint_reads_through_the_live_rss_client(sim) -> None:
    from quantdag.sentiment.sources import RssSource

    now = sim.model.now_ms()
    src = RssSource("sim_rss", f"{sim.url}/news/rss.xml?since={now - 86_400_000}&until={now}", FAST)
    fetched_at = datetime.now(timezone.utc)
    frame = src.fetch(fetched_at, fetched_at, fetched_at)
    assert frame.height > 20 and not frame["deleted"].any()
    assert (frame["fetched_at"] == fetched_at).all() and (frame["published_at"] <= fetched_at).all()
    assert frame.filter(pl.col("assets").list.len() > 0).height == frame.height


def test_backfill_and_day_by_day_runs_give_the_same_items_and_bars(tmp_path, sim) -> None:
    days = _days(4)
    markets = [Market("sim", s, "1h") for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")]
    hashes = []
    for name, runs in (("backfill", [[(days[0][0], days[-1][1])]]), ("daily", [[d] for d in days])):
        wh = Warehouse(tmp_path / f"{name}.duckdb")
        for windows in runs:
            ingest_news(wh, [_source(sim)], windows)
            score_news(wh, markets, windows)
        hashes.append(wh.table_hash("sentiment.items", ("feed", "item_id", "revision", "asset")))
        assert wh.query("SELECT count(duplicate_of) AS n FROM sentiment.items")["n"][0] > 0
    assert hashes[0] == hashes[1]

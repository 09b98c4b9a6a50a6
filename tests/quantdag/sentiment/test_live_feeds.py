"""The live path (RSS/Atom by URL, the Fear & Greed index) against a feed server on 127.0.0.1 in
this test: parsed by feedparser, stored in a real DuckDB file, idempotent, bad input refused whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from quantdag.markets import Market
from quantdag.sentiment.feeds import FeedError, FeedUnavailable, parse_json_feed
from quantdag.sentiment.sources import FearGreedSource, HttpPolicy, RssSource, http_get
from quantdag.stages.sentiment import ingest_news, score_news
from quantdag.store import Warehouse

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>
<item><title>Bitcoin surges to a new all-time high</title><guid>n1</guid><link>https://x/n1</link>
<pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate><category>BTC</category></item>
<item><title>Ether slides as traders turn bearish</title><guid>n2</guid><link>https://x/n2</link>
<pubDate>Mon, 02 Mar 2026 10:05:00 GMT</pubDate></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom desk</title>
<entry><title>Solana rebounds, bulls are back</title><id>urn:a1</id><updated>2026-03-02T11:00:00Z</updated>
<link href="https://x/a1"/></entry></feed>"""
FNG = '{"name":"Fear and Greed Index","data":[{"value":"20","value_classification":"Extreme Fear","timestamp":"1772409600"},' \
      '{"value":"71","value_classification":"Greed","timestamp":"1772323200"}],"metadata":{"error":null}}'


class FeedServer:
    """Serves ``pages`` (path -> (status, body)); ``fail`` (path -> n) answers 503 to the next n requests."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str]] = {}
        self.fail: dict[str, int] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                if server.fail.get(path, 0) > 0:
                    server.fail[path] -= 1
                    status, body = 503, "down"
                else:
                    status, body = server.pages.get(path, (404, "no"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    s = FeedServer()
    s.pages.update({"/rss": (200, RSS), "/atom": (200, ATOM), "/fng": (200, FNG)})
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


FAST = HttpPolicy(timeout_s=2.0, retries=2, backoff_s=0.01)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
TODAY = (datetime(2026, 3, 2, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc))
MARKETS = [Market("sim", s, "1h") for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")]


def test_live_rss_atom_and_index_are_stored_with_our_fetch_time_and_scored(tmp_path, feeds) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    sources = [RssSource("desk", feeds.url("/rss"), FAST), RssSource("atom", feeds.url("/atom"), FAST),
               FearGreedSource("fear_greed", feeds.url("/fng"), ("BTC", "ETH", "SOL"), FAST)]  # fmt: skip
    ingest_news(wh, sources, [TODAY], now=NOW)
    raw = wh.query("SELECT * FROM raw.news ORDER BY feed, item_id")
    assert raw["feed"].to_list() == ["atom", "desk", "desk", "fear_greed", "fear_greed"]
    assert raw.filter(raw["feed"] != "fear_greed")["fetched_at"].to_list() == [NOW] * 3
    assert raw.filter(raw["item_id"] == "n1")["published_at"][0] == datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
    assert raw.filter(raw["item_id"] == "n1")["assets"][0].to_list() == ["BTC"]
    score_news(wh, MARKETS, [TODAY])
    items = wh.query("SELECT item_id, asset, score FROM sentiment.items ORDER BY item_id, asset")
    by = {(r["item_id"], r["asset"]): r["score"] for r in items.iter_rows(named=True)}
    assert by[("n1", "BTC")] > 0.3 and by[("n2", "ETH")] < -0.3 and by[("urn:a1", "SOL")] > 0.3
    assert by[("fng-1772409600", "BTC")] == pytest.approx(-0.6)  # index 20 -> (20 - 50) / 50
    assert ("fng-1772409600", "USDT") not in by  # the index speaks for the configured non-stable assets only


def test_live_reingest_stores_nothing_new_and_a_changed_title_is_the_next_revision(tmp_path, feeds) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    src = [RssSource("desk", feeds.url("/rss"), FAST)]
    ingest_news(wh, src, [TODAY], now=NOW)
    again = ingest_news(wh, src, [TODAY], now=NOW + timedelta(minutes=5))
    assert again.rows_written == 0 and wh.query("SELECT count(*) AS n FROM raw.news")["n"][0] == 2
    feeds.pages["/rss"] = (200, RSS.replace("Ether slides as traders turn bearish", "Ether slides; losses pared"))
    ingest_news(wh, src, [TODAY], now=NOW + timedelta(minutes=10))
    revs = wh.query("SELECT revision, title, fetched_at FROM raw.news WHERE item_id = 'n2' ORDER BY revision")
    assert revs["revision"].to_list() == [0, 1]
    assert revs["fetched_at"][1] == NOW + timedelta(minutes=10)


def test_live_feed_outside_the_run_window_is_not_fetched(tmp_path, feeds) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    past = (TODAY[0] - timedelta(days=5), TODAY[0] - timedelta(days=4))
    assert ingest_news(wh, [RssSource("desk", feeds.url("/rss"), FAST)], [past], now=NOW).rows_written == 0
    assert feeds.hits.get("/rss", 0) == 0  # a live feed has no past to backfill


def test_transient_5xx_is_retried_then_served(feeds) -> None:
    feeds.fail["/rss"] = 2
    assert b"all-time high" in http_get(feeds.url("/rss"), FAST)
    assert feeds.hits["/rss"] == 3


def test_feed_still_down_after_retries_is_unavailable_and_writes_nothing(tmp_path, feeds) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    feeds.fail["/atom"] = 10
    with pytest.raises(FeedUnavailable, match=r"/atom unavailable after 3 attempts \(last: HTTP 503\)"):
        ingest_news(wh, [RssSource("desk", feeds.url("/rss"), FAST), RssSource("atom", feeds.url("/atom"), FAST)], [TODAY], now=NOW)
    assert wh.query("SELECT count(*) AS n FROM raw.news")["n"][0] == 0  # the good feed's items were not written either


@pytest.mark.parametrize(
    ("path", "body", "match"),
    [
        ("/rss", RSS.replace("Mon, 02 Mar 2026 10:05:00 GMT", "sometime soon"), "item 'n2' has an unreadable published date 'sometime soon'"),
        ("/rss", "<html><body>maintenance</body", "not an RSS/Atom document"),
        ("/fng", FNG.replace('"20"', '"hot"'), "entry #0 needs numeric value and timestamp"),
        ("/fng", FNG.replace('"20"', '"140"'), "entry #0 value 140.0 is outside 0..100"),
    ],
    ids=["rss-bad-date", "rss-not-xml", "fng-not-a-number", "fng-out-of-range"],
)
def test_bad_feed_input_is_a_typed_error_naming_the_value_and_nothing_is_written(tmp_path, feeds, path, body, match) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    feeds.pages[path] = (200, body)
    sources = [RssSource("desk", feeds.url("/rss"), FAST), FearGreedSource("fear_greed", feeds.url("/fng"), ("BTC",), FAST)]
    with pytest.raises(FeedError, match=match):
        ingest_news(wh, sources, [TODAY], now=NOW)
    assert wh.query("SELECT count(*) AS n FROM raw.news")["n"][0] == 0


def test_http_404_is_a_feed_error_not_retried(feeds) -> None:
    with pytest.raises(FeedError, match="answered HTTP 404"):
        http_get(feeds.url("/missing?token=secret"), FAST)
    assert feeds.hits["/missing"] == 1


def test_json_archive_item_errors_name_the_item_and_value() -> None:
    good = b'{"items": [{"id": "a", "revision": 0, "published_at": "2026-03-02T10:00:00Z", "fetched_at": "2026-03-02T10:01:00Z", "title": "x"}]}'
    assert parse_json_feed(good, "sim").height == 1
    with pytest.raises(FeedError, match="item 'a' has an unreadable fetched_at 'later'"):
        parse_json_feed(good.replace(b'"2026-03-02T10:01:00Z"', b'"later"'), "sim")
    with pytest.raises(FeedError, match="item 'a' has a bad revision -1"):
        parse_json_feed(good.replace(b'"revision": 0', b'"revision": -1'), "sim")
    with pytest.raises(FeedError, match="body is not JSON"):
        parse_json_feed(good[:40], "sim")

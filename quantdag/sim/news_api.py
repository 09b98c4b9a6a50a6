"""The simulator's news endpoints: the feed as JSON and as RSS 2.0, and a Fear & Greed index.

* ``GET /news/feed.json?since=&until=`` (epoch ms, fetch-time window): ``{"items": [...]}``, every
  version fetched in the window (revisions and deletions included), each with ``id``,
  ``revision``, ``source``, ``kind``, ``published_at``, ``fetched_at`` (ISO 8601 UTC), ``title``,
  ``assets`` and ``deleted``. This is the archive a poller running all along would have built.
* ``GET /news/rss.xml?since=&until=``: the same window as an RSS 2.0 channel (latest version of each
  item, deleted ones left out, assets as ``<category>``): what a live feed looks like, for the
  RSS client path. RSS has no fetch time: the client stamps its own.
* ``GET /news/fear_greed.json?limit=N``: alternative.me's ``/fng/`` shape, one value per day
  from BTC's 7-day return and volatility.

Faults apply as to every route (``server_error``, ``timeout``, ``malformed_json``, ...), plus
``malformed_item``: one item of the page gets an unparseable ``published_at``.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

import numpy as np

from quantdag.sim.model import MarketModel
from quantdag.sim.news import MS_PER_DAY, NewsFeed
from quantdag.sim.routing import BinanceError, Route, SimRequest, SimResponse

FEED_JSON, FEED_RSS, FEAR_GREED = "/news/feed.json", "/news/rss.xml", "/news/fear_greed.json"
NEWS_PATHS = (FEED_JSON, FEED_RSS, FEAR_GREED)
_RSS_TYPE = "application/rss+xml; charset=utf-8"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class NewsApi:
    """Routes of the news endpoints over one :class:`NewsFeed`."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self.feed = NewsFeed(model)

    def routes(self) -> list[Route]:
        return [Route("GET", FEED_JSON, self.feed_json), Route("GET", FEED_RSS, self.feed_rss),
                Route("GET", FEAR_GREED, self.fear_greed)]  # fmt: skip

    def _window(self, req: SimRequest) -> tuple[int, int]:
        try:
            now = self.model.now_ms()
            since = int(req.params.get("since", now - MS_PER_DAY))
            until = int(req.params.get("until", now + 1))
        except ValueError:
            raise BinanceError(-1100, f"since/until must be epoch milliseconds, got {dict(req.params)}") from None
        if until - since > 31 * MS_PER_DAY:
            raise BinanceError(-1100, "window longer than 31 days")
        return since, until

    def _public(self, req: SimRequest) -> list[dict]:
        out = []
        for v in self.feed.versions(*self._window(req)):
            out.append({
                "id": v["id"], "revision": v["revision"], "source": v["source"], "kind": v["kind"],
                "published_at": iso(v["published_ms"]), "fetched_at": iso(v["fetched_ms"]), "title": v["title"],
                "assets": list(v["assets"]), "deleted": v["deleted"], "url": f"https://news.sim/{v['id']}",
            })  # fmt: skip
        if req.fault_kind == "malformed_item" and out:
            out[len(out) // 2]["published_at"] = "yesterday-ish"
        return out

    def feed_json(self, req: SimRequest) -> SimResponse:
        return SimResponse(200, {"items": self._public(req)})

    def feed_rss(self, req: SimRequest) -> SimResponse:
        latest: dict[str, dict] = {}
        for v in self._public(req):
            latest[v["id"]] = v
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>quantdag simulated news</title>'
                 "<link>https://news.sim/</link><description>seeded headlines</description>"]  # fmt: skip
        for v in latest.values():
            if v["deleted"]:
                continue
            try:
                pub = format_datetime(datetime.fromisoformat(v["published_at"].replace("Z", "+00:00")), usegmt=True)
            except ValueError:
                pub = v["published_at"]  # a malformed_item fault: sent as is
            cats = "".join(f"<category>{escape(a)}</category>" for a in v["assets"])
            parts.append(f"<item><title>{escape(v['title'])}</title><link>{escape(v['url'])}</link>"
                         f"<guid isPermaLink=\"false\">{escape(v['id'])}</guid><pubDate>{pub}</pubDate>"
                         f"<author>{escape(v['source'])}</author>{cats}</item>")  # fmt: skip
        parts.append("</channel></rss>")
        return SimResponse(200, body="".join(parts).encode(), content_type=_RSS_TYPE)

    def fear_greed(self, req: SimRequest) -> SimResponse:
        try:
            limit = max(1, min(int(req.params.get("limit", "1")), 365))
        except ValueError:
            raise BinanceError(-1100, f"limit must be an int, got {req.params.get('limit')!r}") from None
        today = self.model.now_ms() // MS_PER_DAY
        first = max(self.model.genesis_ms // MS_PER_DAY + 8, today - limit + 1)
        if first > today:
            return SimResponse(200, {"name": "Fear and Greed Index", "data": [], "metadata": {"error": None}})
        k = self.model.kline_units("BTC/USDT", "1d", (first - 8) * MS_PER_DAY, (today + 1) * MS_PER_DAY)
        closes = k.close.astype(np.float64)
        data = []
        for i, day in enumerate(range(first, today + 1)):
            window = closes[i: i + 8]
            if window.size < 2:
                break
            r = np.diff(np.log(window))
            z = float(r.sum()) / (max(float(r.std()), 1e-4) * math.sqrt(r.size))
            value = int(round(50 + 50 * math.tanh(0.6 * z)))
            data.append({"value": str(value), "value_classification": _classify(value), "timestamp": str(day * 86_400)})
        data.reverse()  # newest first, as alternative.me answers
        return SimResponse(200, {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}})


def _classify(value: int) -> str:
    return ("Extreme Fear" if value < 25 else "Fear" if value < 47 else "Neutral" if value <= 54
            else "Greed" if value < 75 else "Extreme Greed")  # fmt: skip

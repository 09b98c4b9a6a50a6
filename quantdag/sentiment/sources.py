"""News sources over HTTP: the simulator's archive, live RSS/Atom feeds, the Fear & Greed index.

One interface, :class:`NewsSource`: ``fetch(start, end, now)`` returns ``raw.news`` rows. An
*archive* source (the simulator) can answer for any past window with the fetch times its
versions really had, so the stage replaces a day's rows with what it returns; a *live* source
only knows the present, so the stage stores the versions it has not seen (``feeds.new_versions``).
The same HTTP code serves both; tests point the live sources at a feed server on 127.0.0.1.

Transient failures (5xx, 429, timeouts, refused or reset connections) are retried a bounded
number of times with exponential back-off, then :class:`~quantdag.sentiment.feeds.FeedUnavailable`;
a 4xx or a body that does not parse is a :class:`~quantdag.sentiment.feeds.FeedError` at once.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from quantdag.sentiment.feeds import FeedError, FeedUnavailable, parse_fear_greed, parse_json_feed, parse_rss

USER_AGENT = "quantdag-sentiment/1 (+research)"


@dataclass(frozen=True)
class HttpPolicy:
    """Timeout per request, retries of transient failures, and the first back-off (doubled each time)."""

    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.2


def _redacted(url: str) -> str:
    """``url`` without its query string or user info: a feed URL may carry a token."""
    p = urllib.parse.urlsplit(url)
    host = (p.hostname or "") + (f":{p.port}" if p.port else "")
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", "")) + ("?…" if p.query else "")


def http_get(url: str, policy: HttpPolicy = HttpPolicy()) -> bytes:
    """The body of ``GET url``, retrying transient failures.

    Raises
    ------
    FeedUnavailable
        After ``policy.retries`` retries of 5xx/429/timeouts/connection errors.
    FeedError
        On another HTTP error status (404, 403, ...).
    """
    last = ""
    for attempt in range(policy.retries + 1):
        if attempt:
            time.sleep(policy.backoff_s * 2 ** (attempt - 1))
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(req, timeout=policy.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                detail = exc.read()[:200].decode("utf-8", "replace") if exc.fp is not None else ""
                raise FeedError(f"feed {_redacted(url)} answered HTTP {exc.code}" + (f": {detail}" if detail else "")) from None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        except OSError as exc:  # a reset mid-body, an incomplete read
            last = f"{type(exc).__name__}: {exc}"
    raise FeedUnavailable(f"feed {_redacted(url)} unavailable after {policy.retries + 1} attempts (last: {last})")


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class NewsSource:
    """A feed the stage reads; ``name`` is stored in ``raw.news.feed``."""

    name: str
    archive: bool = False

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pl.DataFrame:
        """``raw.news`` rows: for an archive, the versions fetched in ``[start, end)``; live, what the feed shows now."""
        raise NotImplementedError


@dataclass(frozen=True)
class ArchiveJsonSource(NewsSource):
    """The simulator's JSON archive (``/news/feed.json``): every version with the time it appeared."""

    name: str
    url: str
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    archive: bool = True

    #: Longest window one request asks for (the archive refuses more than 31 days).
    page: timedelta = timedelta(days=30)

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pl.DataFrame:
        sep = "&" if "?" in self.url else "?"
        pages, lo, hi = [], start, min(end, now)
        while lo < hi:
            top = min(lo + self.page, hi)
            pages.append(parse_json_feed(http_get(f"{self.url}{sep}since={_ms(lo)}&until={_ms(top)}", self.policy), self.name))
            lo = top
        return pl.concat(pages) if pages else parse_json_feed(b'{"items": []}', self.name)


@dataclass(frozen=True)
class RssSource(NewsSource):
    """A live RSS 2.0 or Atom feed by URL (feedparser); items are stamped with our fetch time."""

    name: str
    url: str
    policy: HttpPolicy = field(default_factory=HttpPolicy)

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pl.DataFrame:
        return parse_rss(http_get(self.url, self.policy), self.name, now)


@dataclass(frozen=True)
class FearGreedSource(NewsSource):
    """The Crypto Fear & Greed index (alternative.me's JSON shape), applied to ``assets`` (the whole market)."""

    name: str
    url: str
    assets: Sequence[str] = ()
    policy: HttpPolicy = field(default_factory=HttpPolicy)

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pl.DataFrame:
        return parse_fear_greed(http_get(self.url, self.policy), self.name, now, self.assets)

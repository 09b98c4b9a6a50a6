"""News feeds as a Dagster resource: one interface, the simulator's feed offline and live feeds by URL.

The configuration picks the implementation (``sentiment.source`` in ``quantdag.yaml``); assets ask
for :class:`NewsResource` and get :class:`~quantdag.sentiment.sources.NewsSource` objects, whose
HTTP code is the same offline and live.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from pydantic import Field

from quantdag.sentiment.sources import ArchiveJsonSource, FearGreedSource, HttpPolicy, NewsSource, RssSource
from resources.exchange import in_process_sim_url


class NewsResource(dg.ConfigurableResource):
    """Where news and social items come from; assets ask for this interface, never a flavour of it."""

    timeout_s: float = 10.0
    retries: int = 3

    @property
    def policy(self) -> HttpPolicy:
        return HttpPolicy(timeout_s=self.timeout_s, retries=self.retries)

    def sources(self, index_assets: Sequence[str] = ()) -> list[NewsSource]:
        """The feeds to read; ``index_assets``: the assets a market-wide index (Fear & Greed) applies to."""
        raise NotImplementedError


class SimulatedNewsResource(NewsResource):
    """The simulator's seeded feed (``/news/feed.json``), from the same simulator as the exchange."""

    sim_url: str | None = Field(default=None, description="an external simulator, e.g. http://127.0.0.1:8765")
    sim_seed: int = Field(default=7, description="seed of the in-process simulator")

    def sources(self, index_assets: Sequence[str] = ()) -> list[NewsSource]:
        base = (self.sim_url or in_process_sim_url(self.sim_seed)).rstrip("/")
        return [ArchiveJsonSource("sim", f"{base}/news/feed.json", self.policy)]


class LiveNewsResource(NewsResource):
    """RSS/Atom feeds by URL and, if set, the Crypto Fear & Greed index."""

    feeds: list[dict[str, str]] = Field(default_factory=list, description="[{name, url}] of RSS/Atom feeds")
    fear_greed_url: str | None = None

    def sources(self, index_assets: Sequence[str] = ()) -> list[NewsSource]:
        out: list[NewsSource] = [RssSource(f["name"], f["url"], self.policy) for f in self.feeds]
        if self.fear_greed_url:
            out.append(FearGreedSource("fear_greed", self.fear_greed_url, tuple(index_assets), self.policy))
        return out

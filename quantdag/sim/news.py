"""A seeded news and social feed whose tone is driven by the market model: something to find, a lot to be fooled by.

Per UTC day and crypto asset of the model, a seeded number of headlines from :data:`SOURCES`,
each of its own reliability. An item's tone is

    reliability * (LEAD_SHARE * lead + (1 - LEAD_SHARE) * lag) + (1 - reliability) * noise

where ``lag`` is the asset's return over the 6 hours before publication and ``lead`` its return
over the 6 hours after, both in units of the asset's 6-hour volatility. The simulator knows the
path (it generates whole days ahead), so ``lead`` is a noisy early look at what is coming: a
strategy that reads the feed point in time has a real, partial edge; one that read it by
publication time alone (ignoring late fetches) would look better than it can be. Each stablecoin
depeg episode (:meth:`MarketModel.depeg_episodes`) brings a burst of panic and, later, relief.

Items reach a poller late (``fetched_at`` after ``published_at``: minutes usually, hours for the
slow blog), the aggregator re-publishes wire stories nearly word for word (near-duplicates), and
some items are later revised or deleted (a new version with a later ``fetched_at``). Versions are
what the feed serves: a version exists from its ``fetched_at`` on, the time a poller running all
along would have first seen it, which is the feed's archive time (see ``quantdag.sentiment.feeds``).

Everything derives from the model's seed and the day, so a day's items are the same in every
process and whenever they are asked for.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from quantdag.sim.markets import SimMarket
from quantdag.sim.model import MarketModel
from quantdag.sim.paths import series_rng

MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
HORIZON_H = 6  # hours of return behind (lag) and ahead (lead) of an item
LEAD_SHARE = 0.25  # how much of an item's signal is the coming return (the rest: the past one): a faint edge, mostly noise to be fooled by


@dataclass(frozen=True)
class Source:
    """A feed source: how reliable its tone is, how many items a day per asset, how late it arrives."""

    name: str
    kind: str  # "news" or "social"
    reliability: float
    per_day: float
    delay_min: tuple[float, float]  # usual fetch delay, minutes (uniform)
    late_share: float  # share of items that arrive hours late
    late_hours: tuple[float, float]


SOURCES: tuple[Source, ...] = (
    Source("wire", "news", 0.85, 3.0, (1, 5), 0.02, (1, 3)),
    Source("cryptodesk", "news", 0.6, 2.5, (5, 30), 0.15, (2, 12)),
    Source("social", "social", 0.3, 6.0, (0, 2), 0.05, (1, 6)),
)
#: Re-publishes a share of wire stories, reworded a little, 10-60 minutes later.
AGGREGATOR, AGGREGATOR_SHARE = "aggregator", 0.4
REVISED_SHARE, DELETED_SHARE = 0.06, 0.02

NAMES: dict[str, tuple[str, ...]] = {
    "BTC": ("Bitcoin", "BTC", "Bitcoin", "XBT"),
    "ETH": ("Ether", "ETH", "Ethereum"),
    "SOL": ("Solana", "SOL"),
    "USDC": ("USDC", "USD Coin"),
}

#: Headline templates by tone bucket (strong negative .. strong positive); {a} is the asset's name.
NEWS_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("{a} plunges as liquidations sweep the market", "{a} crashes; traders brace for more losses",
     "Panic selling hits {a} as bears take control", "{a} tumbles in a broad crypto sell-off"),
    ("{a} slips as traders turn cautious", "{a} drops below key support", "Outflows weigh on {a}",
     "{a} slides amid regulatory worries"),
    ("{a} trades sideways ahead of macro data", "{a} holds steady as volumes thin", "What next for {a}? Analysts split",
     "{a} little changed in quiet session"),
    ("{a} climbs as buyers return", "{a} gains on strong inflows", "Analysts turn bullish on {a}",
     "{a} rebounds from support"),
    ("{a} surges to a new all-time high", "{a} rallies as bulls take charge", "{a} soars on record inflows",
     "Breakout: {a} jumps as short squeeze builds"),
)
SOCIAL_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("{a} getting rekt, this is a rug", "dumping {a} before it goes to zero", "{a} capitulation, ngmi",
     "bagholders of {a} in shambles lol"),
    ("not liking this {a} chart, bearish", "{a} bleeding again", "more FUD on {a} today", "{a} dip keeps dipping"),
    ("{a} chop chop chop", "anyone watching {a}?", "gm, {a} flat again", "{a} doing nothing"),
    ("{a} looking bullish", "hodl your {a}", "{a} pumping nicely", "buying the {a} dip, wagmi"),
    ("{a} to the moon!!!", "{a} mooning, lambo soon", "{a} ATH incoming, wagmi", "{a} pump is insane, bulls are back"),
)
DEPEG_PANIC = ("USDC loses its peg as panic spreads", "USDC depegs; stablecoin holders rush for the exits",
               "USD Coin breaks the peg, panic selling in stablecoins", "USDC crash: is this a bank run?")
DEPEG_RELIEF = ("USDC regains its peg as fears ease", "USD Coin recovers after depeg scare",
                "Relief as USDC climbs back to one dollar")
#: What makes two stories of the same template different stories: a context clause (news) or a tag (social).
CONTEXTS = ("in Asian trading", "after Fed minutes", "as ETF flows swing", "ahead of options expiry", "on exchange data",
            "as funding rates shift", "in thin weekend trade", "after a whale transfer", "as miners move coins",
            "amid macro jitters", "as open interest builds", "after CPI print", "in European hours", "on derivatives desks")
SOCIAL_TAGS = ("lol", "fr", "ngl", "!!", "imo", "tbh", "gm", "smh", "iykyk", "no cap", "send it", "zoom out")
_BUCKETS = (-1.2, -0.4, 0.4, 1.2)


def bucket(tone: float) -> int:
    """Template bucket of a tone: 0 strong negative .. 4 strong positive."""
    return int(np.searchsorted(_BUCKETS, tone))


class NewsFeed:
    """Versions of the feed's items, generated a day at a time from the market model (thread-safe)."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self._days: dict[int, list[dict]] = {}
        self._hourly: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._assets = [m for m in model.markets if m.kind == "crypto" and m.quote in ("USDT", "USD")]

    def versions(self, since_ms: int, until_ms: int, now_ms: int | None = None) -> list[dict]:
        """Versions with ``fetched_at`` in ``[since_ms, until_ms)`` and not after now, oldest fetch first."""
        now = self.model.now_ms() if now_ms is None else now_ms
        hi = min(until_ms, now + 1)
        if hi <= since_ms:
            return []
        first = max(since_ms, self.model.genesis_ms) // MS_PER_DAY - 2  # a late version of an earlier day
        out = [v for d in range(first, (hi - 1) // MS_PER_DAY + 1) for v in self._day(d)
               if since_ms <= v["fetched_ms"] < hi]  # fmt: skip
        return sorted(out, key=lambda v: (v["fetched_ms"], v["id"], v["revision"]))

    def _day(self, day: int) -> list[dict]:
        with self._lock:
            if day not in self._days:
                self._days[day] = self._generate(day) if day * MS_PER_DAY >= self.model.genesis_ms else []
            return self._days[day]

    # ---- generation ----------------------------------------------------------------------------

    def _closes(self, spec: SimMarket, day: int) -> tuple[int, np.ndarray]:
        """Hourly closes from genesis to at least HORIZON_H hours after the day (the model generates ahead),
        aggregated once per 30 days of need rather than once per day."""
        hi = (day + 1) * MS_PER_DAY + (HORIZON_H + 1) * MS_PER_HOUR
        lo = self.model.genesis_ms
        have = self._hourly.get(spec.symbol)
        if have is None or lo + have.size * MS_PER_HOUR < hi:
            end = hi + 30 * MS_PER_DAY
            have = self.model.kline_units(spec.symbol, "1h", lo, end, now_ms=end).close.astype(np.float64)
            self._hourly[spec.symbol] = have
        return lo, have

    def _generate(self, day: int) -> list[dict]:
        items: list[dict] = []
        for spec in self._assets:
            items += self._asset_day(spec, day)
        items += self._depeg_day(day)
        return items

    def _asset_day(self, spec: SimMarket, day: int) -> list[dict]:
        rng = series_rng(self.model.seed, "news:" + spec.symbol, day)
        lo, closes = self._closes(spec, day)
        sigma = spec.daily_vol * math.sqrt(HORIZON_H / 24)
        asset = spec.base
        items: list[dict] = []
        for src in SOURCES:
            for k in range(int(rng.poisson(src.per_day))):
                published = day * MS_PER_DAY + int(rng.integers(0, MS_PER_DAY // MS_PER_MINUTE)) * MS_PER_MINUTE
                h = (published - lo) // MS_PER_HOUR  # the hour being published in: its close is still ahead
                here = closes[max(h - 1, 0)]
                before = closes[max(h - 1 - HORIZON_H, 0)]
                after = closes[min(h - 1 + HORIZON_H, closes.size - 1)]
                lag, lead = math.log(here / before) / sigma, math.log(after / here) / sigma
                tone = src.reliability * (LEAD_SHARE * lead + (1 - LEAD_SHARE) * lag) + (1 - src.reliability) * float(rng.normal())
                templates = (SOCIAL_TEMPLATES if src.kind == "social" else NEWS_TEMPLATES)[bucket(tone)]
                name = NAMES.get(asset, (asset,))[int(rng.integers(len(NAMES.get(asset, (asset,)))))]
                title = templates[int(rng.integers(len(templates)))].format(a=name)
                move = 100 * math.expm1(lag * sigma)
                if src.kind == "news":
                    title = f"{title[0].upper()}{title[1:]} ({move:+.1f}%) {CONTEXTS[int(rng.integers(len(CONTEXTS)))]}"
                else:
                    title = f"{title} @ {here:,.0f} {SOCIAL_TAGS[int(rng.integers(len(SOCIAL_TAGS)))]}"
                delay = float(rng.uniform(*src.delay_min)) * MS_PER_MINUTE
                if rng.random() < src.late_share:
                    delay = float(rng.uniform(*src.late_hours)) * MS_PER_HOUR
                item = _item(f"{src.name}-{asset}-{day}-{k}", src, published, published + int(delay), title, [asset], tone)
                items += self._versions(item, rng)
                if src.name == "wire" and rng.random() < AGGREGATOR_SHARE:
                    copy = f"{title} - report" if rng.random() < 0.5 else f"Breaking: {title}"
                    again = published + int(rng.uniform(10, 60)) * MS_PER_MINUTE
                    agg = Source(AGGREGATOR, "news", 0.85, 0, (1, 1), 0, (1, 1))
                    items.append(_item(f"{AGGREGATOR}-{asset}-{day}-{k}", agg, again, again + 2 * MS_PER_MINUTE, copy, [asset], tone))
        return items

    def _versions(self, item: dict, rng: np.random.Generator) -> list[dict]:
        """The item, plus a later revision (reworded, tone reversed in part) or deletion for a seeded few."""
        u = float(rng.random())
        later = item["fetched_ms"] + int(rng.uniform(1, 24) * MS_PER_HOUR)
        if u < DELETED_SHARE:
            return [item, {**item, "revision": 1, "fetched_ms": later, "deleted": True}]
        if u < DELETED_SHARE + REVISED_SHARE:
            return [item, {**item, "revision": 1, "fetched_ms": later, "title": f"Update: {item['title']} (corrected)",
                           "tone": -0.5 * item["tone"]}]  # fmt: skip
        return [item]

    def _depeg_day(self, day: int) -> list[dict]:
        """Panic items while a stablecoin depeg starts and deepens, relief items as it recovers."""
        items: list[dict] = []
        for spec in self.model.markets:
            if spec.kind != "stable":
                continue
            lo, hi = day * MS_PER_DAY, (day + 1) * MS_PER_DAY
            for ep in self.model.depeg_episodes(spec.symbol, lo - 2 * MS_PER_DAY, hi):
                rng = series_rng(self.model.seed, "news-depeg:" + spec.symbol, ep.start_ms // MS_PER_MINUTE)
                bursts = [(ep.start_ms + int(f * (ep.trough_ms - ep.start_ms + 3 * MS_PER_HOUR)), DEPEG_PANIC, -2.5)
                          for f in np.sort(rng.uniform(0, 1, 12))]  # fmt: skip
                bursts += [(ep.trough_ms + int(rng.uniform(6, 30) * MS_PER_HOUR), DEPEG_RELIEF, 1.5) for _ in range(4)]
                for k, (published, titles, tone) in enumerate(bursts):
                    if not lo <= published < hi:
                        continue
                    src = SOURCES[k % len(SOURCES)]
                    title = titles[int(rng.integers(len(titles)))]
                    fetched = published + int(rng.uniform(*src.delay_min) * MS_PER_MINUTE)
                    items.append(_item(f"{src.name}-{spec.base}-depeg-{ep.start_ms}-{k}", src, published, fetched, title,
                                       [spec.base], tone))  # fmt: skip
        return items


def _item(item_id: str, src: Source, published: int, fetched: int, title: str, assets: list[str], tone: float) -> dict:
    return {
        "id": item_id, "revision": 0, "source": src.name, "kind": src.kind, "published_ms": published,
        "fetched_ms": fetched, "title": title, "assets": assets, "deleted": False, "tone": tone,
    }  # fmt: skip

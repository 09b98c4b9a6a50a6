"""Which of the universe's assets a text is about: names and tickers -> base asset codes.

The universe comes from the configuration (``quantdag.yaml`` ``universe.markets``: every base and
quote asset of its markets), so adding a market adds its asset here without a code edit. A
ticker matches in upper case only (``SOL``, ``$SOL``: "sol" in a sentence is not Solana); a name
matches in any case (``bitcoin``, ``Ether``). :data:`KNOWN_NAMES` knows the usual names of the
large assets; an asset it does not know is still found by its ticker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from quantdag.markets import Market

#: asset code -> names (any case) and extra tickers (upper case) people use for it.
KNOWN_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "BTC": (("bitcoin", "bitcoins"), ("XBT",)),
    "ETH": (("ether", "ethereum"), ()),
    "SOL": (("solana",), ()),
    "USDC": (("usd coin",), ()),
    "USDT": (("tether",), ()),
    "XRP": (("ripple",), ()),
    "BNB": (("binance coin",), ()),
    "DOGE": (("dogecoin",), ()),
    "ADA": (("cardano",), ()),
    "AVAX": (("avalanche",), ()),
    "DOT": (("polkadot",), ()),
    "LINK": (("chainlink",), ()),
    "LTC": (("litecoin",), ()),
    "MATIC": (("polygon",), ("POL",)),
    "DAI": ((), ()),
}


def universe_assets(markets: Iterable[Market]) -> tuple[str, ...]:
    """Every base and quote asset of ``markets``, sorted (``BTC/USDT`` gives BTC and USDT)."""
    return tuple(sorted({a for m in markets for a in (m.base, m.quote)}))


@dataclass(frozen=True)
class EntityMap:
    """Finds the assets of one universe in texts; build with :meth:`for_assets` or :meth:`for_markets`."""

    assets: tuple[str, ...]
    _ticker: re.Pattern[str]
    _name: re.Pattern[str] | None
    _by_alias: dict[str, str]

    @classmethod
    def for_assets(cls, assets: Sequence[str]) -> EntityMap:
        by_alias: dict[str, str] = {}
        tickers: list[str] = []
        names: list[str] = []
        for asset in sorted(set(assets)):
            known_names, extra = KNOWN_NAMES.get(asset, ((), ()))
            for t in (asset, *extra):
                by_alias[t] = asset
                tickers.append(t)
            for n in known_names:
                by_alias[n.lower()] = asset
                names.append(n)
        by_len = lambda xs: sorted(xs, key=len, reverse=True)  # noqa: E731  (longest first: "usd coin" before "usd")
        ticker = re.compile(r"(?<![A-Za-z0-9])\$?(" + "|".join(map(re.escape, by_len(tickers))) + r")(?![A-Za-z0-9])")
        name = re.compile(r"\b(" + "|".join(map(re.escape, by_len(names))) + r")\b", re.IGNORECASE) if names else None
        return cls(tuple(sorted(set(assets))), ticker, name, by_alias)

    @classmethod
    def for_markets(cls, markets: Iterable[Market]) -> EntityMap:
        return cls.for_assets(universe_assets(markets))

    def tag(self, text: str) -> tuple[str, ...]:
        """The universe's assets ``text`` mentions, sorted, each once."""
        found = {self._by_alias[m] for m in self._ticker.findall(text)}
        if self._name is not None:
            found.update(self._by_alias[m.lower()] for m in self._name.findall(text))
        return tuple(sorted(found))

"""The markets the pipeline keeps, as partition keys ``"<symbol>:<timeframe>"``.

A market with ``resample_from`` is not downloaded: its candles are built from the finer
timeframe of the same symbol, so a 4h or 1d series always agrees with the 1h one it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantdag.errors import ConfigurationError
from quantdag.timeframes import SUPPORTED, timeframe_ms


@dataclass(frozen=True)
class MarketSpec:
    """One market in the universe."""

    symbol: str
    timeframe: str
    resample_from: str | None = None

    def __post_init__(self) -> None:
        if self.timeframe not in SUPPORTED:
            raise ConfigurationError(f"timeframe {self.timeframe!r} of {self.symbol} not in {SUPPORTED}")
        if self.resample_from is not None:
            if self.resample_from not in SUPPORTED:
                raise ConfigurationError(f"resample_from {self.resample_from!r} of {self.key} not in {SUPPORTED}")
            fine, coarse = timeframe_ms(self.resample_from), timeframe_ms(self.timeframe)
            if coarse <= fine or coarse % fine:
                raise ConfigurationError(
                    f"{self.key}: cannot resample {self.resample_from!r} to {self.timeframe!r} "
                    "(target must be a coarser multiple)"
                )

    @property
    def key(self) -> str:
        return f"{self.symbol}:{self.timeframe}"

    @property
    def fetch_timeframe(self) -> str:
        return self.resample_from or self.timeframe


UNIVERSE: tuple[MarketSpec, ...] = (
    MarketSpec("BTC/USDT", "1h"),
    MarketSpec("ETH/USDT", "1h"),
    MarketSpec("SOL/USDT", "1h"),
    MarketSpec("BTC/USDC", "1h"),
    MarketSpec("USDC/USDT", "1h"),
    MarketSpec("BTC/USDT", "4h", resample_from="1h"),
    MarketSpec("BTC/USDT", "1d", resample_from="1h"),
)

_BY_KEY = {m.key: m for m in UNIVERSE}


def market(key: str) -> MarketSpec:
    """The market of partition key ``key``.

    Raises
    ------
    ConfigurationError
        If ``key`` is not in the universe.
    """
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ConfigurationError(f"unknown market {key!r}; known: {', '.join(_BY_KEY)}") from None


#: Markets every strategy parameter set is signalled and backtested on.
RESEARCH_MARKETS: tuple[MarketSpec, ...] = tuple(market(k) for k in ("BTC/USDT:1h", "ETH/USDT:1h", "SOL/USDT:1h"))

"""What the simulated exchange lists: one frozen :class:`SimMarket` per market.

Prices and quantities are kept as integers (ticks and lot steps) everywhere inside the simulator so
that aggregated candles and the decimal strings served over HTTP are exact; ``price_decimals`` and
``qty_decimals`` fix the tick (``10**-price_decimals``) and lot step (``10**-qty_decimals``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from quantdag.errors import ConfigurationError

#: How a market's price is generated (see :mod:`quantdag.sim.model`).
KINDS = ("crypto", "stable", "cross")

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,10}/[A-Z0-9]{2,10}$")


@dataclass(frozen=True)
class SimMarket:
    """One simulated spot market.

    Parameters
    ----------
    symbol:
        Unified symbol ``"BASE/QUOTE"``; the exchange id is ``"BASEQUOTE"``.
    start_price:
        Price at genesis (ignored for ``kind="cross"``, whose price follows its legs).
    price_decimals, qty_decimals:
        Tick size ``10**-price_decimals`` and lot step ``10**-qty_decimals`` (0..8).
    daily_volume:
        Average traded volume per day, in base units.
    avg_trade_size:
        Average trade size in base units (sets the kline trade count).
    daily_vol:
        Typical daily volatility of log returns (unconditional; clustering moves it around).
    beta:
        Loading on the common crypto factor (``kind="crypto"`` only).
    jumps_per_day, jump_size:
        Rate and standard deviation (log) of idiosyncratic price jumps.
    spread_bps:
        Typical quoted spread in basis points (at least one tick is always kept).
    kind:
        ``"crypto"`` (factor + GARCH-t + jumps), ``"stable"`` (mean-reverting peg at 1.0 with seeded
        depeg episodes) or ``"cross"`` (price = ``legs[0] / legs[1]`` times a tiny basis).
    legs:
        For ``kind="cross"``: the numerator and denominator markets, e.g.
        ``("BTC/USDT", "USDC/USDT")`` for BTC/USDC.

    Raises
    ------
    ConfigurationError
        On a malformed symbol, non-positive sizes, unknown kind or missing legs.
    """

    symbol: str
    start_price: float
    price_decimals: int
    qty_decimals: int
    daily_volume: float
    avg_trade_size: float
    daily_vol: float = 0.03
    beta: float = 1.0
    jumps_per_day: float = 0.25
    jump_size: float = 0.01
    spread_bps: float = 0.5
    kind: str = "crypto"
    legs: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not _SYMBOL_RE.match(self.symbol):
            raise ConfigurationError(f"market symbol must look like 'BTC/USDT', got {self.symbol!r}")
        if self.kind not in KINDS:
            raise ConfigurationError(f"market {self.symbol}: kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("price_decimals", "qty_decimals"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 8:
                raise ConfigurationError(f"market {self.symbol}: {name} must be an int in [0, 8], got {value!r}")
        for name in ("start_price", "daily_volume", "avg_trade_size", "daily_vol", "spread_bps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigurationError(f"market {self.symbol}: {name} must be a positive number, got {value!r}")
        if self.start_price * 10**self.price_decimals < 100:
            raise ConfigurationError(
                f"market {self.symbol}: start_price {self.start_price} is under 100 ticks; raise price_decimals"
            )
        if self.jumps_per_day < 0 or self.jump_size < 0 or self.beta < 0:
            raise ConfigurationError(f"market {self.symbol}: beta, jumps_per_day and jump_size must be >= 0")
        if self.kind == "cross":
            if self.legs is None or len(self.legs) != 2 or self.legs[0] == self.legs[1]:
                raise ConfigurationError(f"market {self.symbol}: a cross market needs two distinct legs")
        elif self.legs is not None:
            raise ConfigurationError(f"market {self.symbol}: only kind='cross' takes legs")

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def id(self) -> str:
        """Exchange market id, e.g. ``"BTCUSDT"``."""
        return self.base + self.quote

    @property
    def tick(self) -> float:
        return 1.0 / 10**self.price_decimals

    @property
    def step(self) -> float:
        return 1.0 / 10**self.qty_decimals


#: The default universe: majors against USDT, BTC against USDC, and the USDC/USDT peg.
DEFAULT_MARKETS: tuple[SimMarket, ...] = (
    SimMarket(
        "BTC/USDT", 60_000.0, 2, 5, daily_volume=20_000.0, avg_trade_size=0.01,
        daily_vol=0.03, beta=1.0, jumps_per_day=0.15, jump_size=0.008, spread_bps=0.2,
    ),
    SimMarket(
        "ETH/USDT", 3_000.0, 2, 4, daily_volume=300_000.0, avg_trade_size=0.2,
        daily_vol=0.04, beta=1.15, jumps_per_day=0.25, jump_size=0.01, spread_bps=0.3,
    ),
    SimMarket(
        "SOL/USDT", 150.0, 2, 3, daily_volume=2_500_000.0, avg_trade_size=5.0,
        daily_vol=0.055, beta=1.3, jumps_per_day=0.35, jump_size=0.015, spread_bps=0.8,
    ),
    SimMarket(
        "BNB/USDT", 550.0, 2, 3, daily_volume=150_000.0, avg_trade_size=0.5,
        daily_vol=0.03, beta=0.8, jumps_per_day=0.2, jump_size=0.01, spread_bps=0.8,
    ),
    SimMarket(
        "USDC/USDT", 1.0, 4, 0, daily_volume=400_000_000.0, avg_trade_size=500.0,
        daily_vol=0.0005, spread_bps=1.0, kind="stable",
    ),
    SimMarket(
        "BTC/USDC", 60_000.0, 2, 5, daily_volume=3_000.0, avg_trade_size=0.01,
        daily_vol=0.03, spread_bps=0.5, kind="cross", legs=("BTC/USDT", "USDC/USDT"),
    ),
)


def check_universe(markets: tuple[SimMarket, ...]) -> tuple[SimMarket, ...]:
    """Validate a universe as a whole and order it so every cross market follows its legs.

    Raises
    ------
    ConfigurationError
        On an empty universe, duplicate symbols or ids, or a cross market whose legs are missing
        or themselves cross markets.
    """
    markets = tuple(markets)
    if not markets:
        raise ConfigurationError("the simulated exchange needs at least one market")
    for spec in markets:
        if not isinstance(spec, SimMarket):
            raise ConfigurationError(f"markets must be SimMarket instances, got {spec!r}")
    symbols = [m.symbol for m in markets]
    ids = [m.id for m in markets]
    if len(set(symbols)) != len(symbols) or len(set(ids)) != len(ids):
        raise ConfigurationError(f"duplicate market symbols or ids in {symbols}")
    by_symbol = {m.symbol: m for m in markets}
    for spec in markets:
        if spec.kind != "cross":
            continue
        for leg in spec.legs or ():
            if leg not in by_symbol or by_symbol[leg].kind == "cross":
                raise ConfigurationError(
                    f"cross market {spec.symbol}: leg {leg!r} must be a listed non-cross market"
                )
    return tuple(m for m in markets if m.kind != "cross") + tuple(m for m in markets if m.kind == "cross")

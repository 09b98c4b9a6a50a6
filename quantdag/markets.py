"""The one market type of the pipeline, its partition keys and its UTC time windows.

A :class:`Market` is a venue's symbol at a timeframe: what the stages read and write, what the
universe in ``quantdag.yaml`` lists, and (as ``"<symbol>:<timeframe>"``) a Dagster partition key.
A market with ``resample_from`` is not downloaded: its candles are built from the finer timeframe
of the same symbol, so a 4h or 1d series always agrees with the 1h one it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from quantdag.errors import ConfigurationError
from quantdag.timeframes import SUPPORTED, timeframe_ms

#: A half-open UTC window ``[start, end)``.
Window = tuple[datetime, datetime]

#: The natural key of a candle in every candle table.
CANDLE_KEY = ("exchange", "symbol", "timeframe", "ts")


@dataclass(frozen=True, order=True)
class Market:
    """A market as the stages see it: which venue, symbol and timeframe, and where candles come from.

    ``exchange`` is the value stored in every table's ``exchange`` column (``"sim"`` offline).

    Raises
    ------
    ConfigurationError
        If a timeframe is unsupported or ``resample_from`` is not a finer divisor of ``timeframe``.
    """

    exchange: str
    symbol: str
    timeframe: str
    resample_from: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or "/" not in self.symbol:
            raise ConfigurationError(f"market symbol {self.symbol!r} is not 'BASE/QUOTE'")
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
        """The partition key ``"<symbol>:<timeframe>"``."""
        return f"{self.symbol}:{self.timeframe}"

    @property
    def fetch_timeframe(self) -> str:
        """The timeframe downloaded for this market (its source's when resampled)."""
        return self.resample_from or self.timeframe

    @property
    def base(self) -> str:
        return self.symbol.split("/", 1)[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/", 1)[1].split(":", 1)[0]

    @property
    def where(self) -> dict[str, str]:
        """Column filters of this market's rows in any candle-keyed table."""
        return {"exchange": self.exchange, "symbol": self.symbol, "timeframe": self.timeframe}

    def on(self, exchange: str) -> Market:
        """The same market on another venue."""
        return replace(self, exchange=exchange)

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


def market_by_key(markets: Iterable[Market], key: str) -> Market:
    """The market of partition key ``key`` (``"BTC/USDT:1h"``) among ``markets``.

    Raises
    ------
    ConfigurationError
        If no market has that key.
    """
    by_key = {m.key: m for m in markets}
    try:
        return by_key[key]
    except KeyError:
        raise ConfigurationError(f"unknown market {key!r}; known: {', '.join(by_key) or 'none'}") from None


def day_bounds(day: date) -> Window:
    """The UTC half-open window ``[day 00:00, next day 00:00)``."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def contiguous(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days merged into inclusive runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def day_windows(days: Iterable[date]) -> list[Window]:
    """UTC windows covering ``days``, one per run of consecutive days."""
    return [(day_bounds(a)[0], day_bounds(b)[1]) for a, b in contiguous(days)]


def symbol_tag(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"btc_usdt"``: a symbol inside a column name."""
    return "".join(ch if ch.isalnum() else "_" for ch in symbol.lower())


def peer_close_column(symbol: str) -> str:
    """``"ETH/USDT"`` -> ``"peer_close_eth_usdt"``: the column a strategy frame carries a peer market's close in."""
    return "peer_close_" + symbol_tag(symbol)

"""One root error with a shallow hierarchy, so callers can catch as broadly or narrowly as they need.

Every error names the offending value in its message; wrap lower-level errors with ``raise ... from``.
"""

from __future__ import annotations


class QuantdagError(Exception):
    """Root of every error quantdag raises on purpose."""


class ConfigurationError(QuantdagError, ValueError):
    """A setting, parameter or argument is invalid (checked before any work starts)."""


class DataError(QuantdagError, ValueError):
    """Input data breaks a contract: wrong columns, NaN prices, unsorted time, bad OHLC."""


class ExchangeError(QuantdagError):
    """The exchange refused a request or answered with something unusable.

    ``kind`` is the name of the underlying ccxt error class (e.g. ``"BadSymbol"``,
    ``"InsufficientFunds"``), kept as text because the original exception is not chained: its
    message can carry signed URLs.
    """

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class ExchangeUnavailable(ExchangeError):
    """Transient faults (rate limits, bans, timeouts, 5xx) outlasted the bounded retries.

    For an order this outcome is ambiguous: it may or may not have reached the exchange.
    """


class StrategyError(QuantdagError):
    """A strategy misbehaved: bad parameters, altered its input frame, or looked ahead."""


class OrderRejected(QuantdagError):
    """An order was refused by the risk checks or definitively by the broker."""


class InvalidStateTransition(QuantdagError):
    """An order event is impossible in the order's current state."""

"""Bounded, jittered retries for transient exchange faults, and only for those.

ccxt splits its errors in two families (its manual, "Error Handling"): ``NetworkError``
(rate limits, DDoS protection/bans, timeouts, exchange unavailable) is recoverable by waiting;
``ExchangeError`` (bad symbol, invalid order, insufficient funds, auth) is deterministic and a
retry would only repeat it, or worse, for orders, duplicate it. So this module retries the
first family a bounded number of times with exponential back-off and full jitter, honours the
exchange's ``Retry-After`` (a 418 ban means zero requests until it ends), and never retries the
second family.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import ccxt

from quantdag.errors import ConfigurationError, ExchangeError, ExchangeUnavailable
from quantdag.exchange.secrets import scrub

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on a transient fault.

    Attributes
    ----------
    max_retries:
        Retries after the first attempt (so at most ``max_retries + 1`` calls). Default 5.
    base_delay:
        Seconds before the first retry; doubles each time. Default 0.5.
    max_delay:
        Cap on one back-off wait, in seconds. Default 30.
    max_ban_wait:
        Longest ``Retry-After`` (from a 429 or a 418 ban) worth waiting out, in seconds. A
        longer ban fails fast with a clear error instead of hanging a run. Default 120.
    jitter:
        Full jitter (wait a uniform fraction of the back-off) so that parallel clients do not
        retry in lock-step. Default True.
    """

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_ban_wait: float = 120.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ConfigurationError(
                f"need 0 <= base_delay <= max_delay, got base_delay={self.base_delay!r}, "
                f"max_delay={self.max_delay!r}"
            )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling) if self.jitter else ceiling


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The ``Retry-After`` header (seconds form) of the last response, if any."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    headers: Callable[[], Mapping[str, str] | None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn``, retrying ccxt ``NetworkError`` within ``policy``; wrap every failure.

    Parameters
    ----------
    fn:
        The exchange call.
    what:
        Short description for errors and logs, e.g. ``"fetch_ohlcv BTC/USDT 1h since 2026-01-01"``.
    headers:
        Returns the last response's headers, for ``Retry-After``.

    Raises
    ------
    ExchangeUnavailable
        After the retries are spent, or when a ban lasts longer than ``policy.max_ban_wait``.
    ExchangeError
        At once, for a deterministic ccxt error. Messages name the call and never hold secrets;
        the ccxt exception is not chained because its text can carry signed URLs.
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return fn()
        except ccxt.NetworkError as exc:
            attempt += 1
            kind = type(exc).__name__
            if attempt > policy.max_retries:
                raise ExchangeUnavailable(
                    f"{what}: gave up after {attempt} attempts, last error {kind}: {scrub(exc)}",
                    kind=kind,
                ) from None
            wait = policy.backoff(attempt, rng)
            told = retry_after_seconds(headers())
            if told is not None and isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
                if told > policy.max_ban_wait:
                    raise ExchangeUnavailable(
                        f"{what}: exchange asks to wait {told:.0f}s ({kind}), more than "
                        f"max_ban_wait={policy.max_ban_wait:.0f}s; not retrying",
                        kind=kind,
                    ) from None
                wait = max(wait, told)
            log.warning("%s: %s, retry %d/%d in %.2fs", what, kind, attempt, policy.max_retries, wait)
            sleep(wait)
        except ccxt.BaseError as exc:
            kind = type(exc).__name__
            raise ExchangeError(f"{what}: {kind}: {scrub(exc)}", kind=kind) from None

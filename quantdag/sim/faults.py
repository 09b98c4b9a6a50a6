"""Faults the simulated exchange injects, so clients can be tested against a misbehaving venue.

A :class:`FaultPlan` holds two things:

- a **scripted queue**: "the next ``count`` requests matching ``path`` get fault X", consumed in
  order (a request takes the first queued fault that matches it);
- **seeded random faults**: each matching request gets fault X with ``probability`` (one uniform
  draw per request from ``random.Random(seed)``, so the sequence of faults is reproducible for a
  given sequence of requests). Random faults are drawn only when no scripted fault applies.

Kinds (see :data:`FAULT_KINDS`): transport and status faults apply to any path; the page faults
(:data:`PAGE_FAULTS`) rewrite a klines page and so only ever match ``/api/v3/klines``;
``malformed_item`` spoils one item of a news page and only matches ``/news/...``.
Plans serialise to and from JSON (:meth:`FaultPlan.to_dict`, :meth:`FaultPlan.from_dict`), which is
what ``POST /sim/faults`` takes.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from quantdag.errors import ConfigurationError

KLINES_PATH = "/api/v3/klines"
NEWS_PREFIX = "/news/"

#: Every fault kind, in the order random faults are tried.
FAULT_KINDS = (
    "rate_limit",          # 429 + Retry-After
    "ban",                 # 418 + Retry-After; every request gets 418 until the ban expires
    "server_error",        # 500, 502 or 503 with an HTML gateway page
    "timeout",             # hold the connection delay_s, then close it without answering
    "reset",               # drop the connection (TCP RST) without answering
    "malformed_json",      # 200 with the real body truncated
    "maintenance_html",    # an HTML maintenance page with 503 (default) or 200
    "empty_page",          # 200 with []
    "duplicate_rows",      # klines page repeats rows (overlap with the previous page, and in-page)
    "out_of_order",        # klines page shuffled
    "missing_candles",     # some interior candles removed from a klines page
    "open_last_candle",    # the last candle of a klines page is the one still open at now
    "seconds_timestamps",  # klines open/close times in seconds instead of milliseconds
    "malformed_item",      # a news page (/news/...) with one item whose published_at cannot be parsed
)
PAGE_FAULTS = frozenset({"duplicate_rows", "out_of_order", "missing_candles", "open_last_candle", "seconds_timestamps"})
#: Faults of the news feed's pages (``quantdag.sim.news_api``): they only match ``/news/...`` paths.
NEWS_FAULTS = frozenset({"malformed_item"})

_STATUSES = {"server_error": (500, 502, 503), "maintenance_html": (200, 503)}


@dataclass(frozen=True)
class Fault:
    """One kind of fault and its parameters.

    Parameters
    ----------
    kind:
        One of :data:`FAULT_KINDS`.
    count:
        Scripted faults: how many matching requests get it.
    probability:
        Random faults: chance per matching request.
    path:
        Only requests to this exact path match (None: every path; page faults: klines only).
    status:
        ``server_error``: 500, 502 or 503 (None: seeded choice). ``maintenance_html``: 503 or 200.
    retry_after_s:
        ``rate_limit`` and ``ban``: the Retry-After (header rounded up to whole seconds); a ban
        lasts this long.
    delay_s:
        ``timeout``: how long the connection is held before it is closed unanswered.
    fraction:
        ``missing_candles`` and ``duplicate_rows``: share of the page's rows affected (at least one).

    Raises
    ------
    ConfigurationError
        On an unknown kind or an out-of-range parameter.
    """

    kind: str
    count: int = 1
    probability: float = 0.0
    path: str | None = None
    status: int | None = None
    retry_after_s: float = 1.0
    delay_s: float = 2.0
    fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigurationError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(f"fault {self.kind}: count must be an int >= 1, got {self.count!r}")
        if not 0.0 <= float(self.probability) <= 1.0:
            raise ConfigurationError(f"fault {self.kind}: probability must be in [0, 1], got {self.probability!r}")
        if self.path is not None and (not isinstance(self.path, str) or not self.path.startswith("/")):
            raise ConfigurationError(f"fault {self.kind}: path must start with '/', got {self.path!r}")
        if self.status is not None and self.status not in _STATUSES.get(self.kind, ()):
            raise ConfigurationError(
                f"fault {self.kind}: status {self.status!r} not allowed (allowed: {_STATUSES.get(self.kind, ())})"
            )
        if not self.retry_after_s > 0 or not self.delay_s >= 0 or not 0.0 < self.fraction <= 1.0:
            raise ConfigurationError(
                f"fault {self.kind}: need retry_after_s > 0, delay_s >= 0 and 0 < fraction <= 1, "
                f"got {self.retry_after_s!r}, {self.delay_s!r}, {self.fraction!r}"
            )

    def matches(self, path: str) -> bool:
        """Whether a request to ``path`` is eligible for this fault."""
        if self.kind in PAGE_FAULTS and path != KLINES_PATH:
            return False
        if self.kind in NEWS_FAULTS and not path.startswith(NEWS_PREFIX):
            return False
        return self.path is None or self.path == path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build from JSON-like data.

        Raises
        ------
        ConfigurationError
            On unknown keys or bad values.
        """
        return dataclass_from_dict(cls, data, "fault")


def dataclass_from_dict(cls: Any, data: Any, what: str) -> Any:
    """``cls(**data)`` from JSON-like data, or a :class:`ConfigurationError` naming the bad keys or values."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"a {what} must be a JSON object, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigurationError(f"unknown {what} fields {sorted(unknown)}; known: {sorted(known)}")
    try:
        return cls(**dict(data))
    except TypeError as exc:
        raise ConfigurationError(f"bad {what} {dict(data)!r}: {exc}") from exc


@dataclass(frozen=True)
class Draw:
    """A fault chosen for one request; ``index`` numbers the plan's draws and seeds page rewrites."""

    fault: Fault
    index: int
    seed: int

    def rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.index])


class FaultPlan:
    """A scripted queue plus seeded random faults; thread-safe.

    Parameters
    ----------
    scripted:
        Faults applied in order, each to its next ``count`` matching requests.
    random:
        Faults each drawn with its ``probability`` per matching request.
    seed:
        Seeds the random draws and every page rewrite.

    Raises
    ------
    ConfigurationError
        If the probabilities of random faults that can match one path add up to more than 1.
    """

    def __init__(self, scripted: Iterable[Fault] = (), random: Iterable[Fault] = (), *, seed: int = 0) -> None:
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._random = tuple(random)
        self._rng = _new_rng(self.seed)
        self._draws = 0
        for fault in scripted:
            self.push(fault)
        for fault in self._random:
            if not isinstance(fault, Fault):
                raise ConfigurationError(f"random faults must be Fault instances, got {fault!r}")
        if sum(f.probability for f in self._random) > 1.0 + 1e-12:
            raise ConfigurationError("random fault probabilities add up to more than 1")

    def __repr__(self) -> str:
        return f"FaultPlan(scripted={len(self.scripted)}, random={len(self._random)}, seed={self.seed})"

    @classmethod
    def with_rates(
        cls, rates: Mapping[str, float], *, seed: int = 0, path: str | None = None, **params: Any
    ) -> FaultPlan:
        """Random faults from ``{kind: probability}``, all restricted to ``path`` and sharing ``params``."""
        return cls(random=[Fault(kind, probability=p, path=path, **params) for kind, p in rates.items()], seed=seed)

    @property
    def scripted(self) -> tuple[Fault, ...]:
        """Queued faults with their remaining counts."""
        with self._lock:
            return tuple(self._queue)

    @property
    def random(self) -> tuple[Fault, ...]:
        return self._random

    def push(self, fault: Fault) -> None:
        """Queue a scripted fault after those already queued."""
        if not isinstance(fault, Fault):
            raise ConfigurationError(f"scripted faults must be Fault instances, got {fault!r}")
        with self._lock:
            self._queue.append(fault)

    def inject(self, kind: str, count: int = 1, path: str | None = None, **params: Any) -> Fault:
        """Queue ``count`` faults of ``kind`` (see :class:`Fault` for ``params``) and return the spec."""
        fault = Fault(kind, count=count, path=path, **params)
        self.push(fault)
        return fault

    def clear(self) -> None:
        """Drop the queued faults (random faults stay)."""
        with self._lock:
            self._queue.clear()

    def draw(self, path: str) -> Draw | None:
        """The fault for the next request to ``path``, if any (consumes queue entries)."""
        with self._lock:
            for i, fault in enumerate(self._queue):
                if fault.matches(path):
                    if fault.count == 1:
                        del self._queue[i]
                    else:
                        self._queue[i] = replace(fault, count=fault.count - 1)
                    return self._next(fault)
            candidates = [f for f in self._random if f.matches(path)]
            if not candidates:
                return None
            u = self._rng.random()
            total = 0.0
            for fault in candidates:
                total += fault.probability
                if u < total:
                    return self._next(fault)
            return None

    def _next(self, fault: Fault) -> Draw:
        self._draws += 1
        return Draw(fault, self._draws, self.seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"seed": ..., "scripted": [...], "random": [...]}``."""
        return {
            "seed": self.seed,
            "scripted": [f.to_dict() for f in self.scripted],
            "random": [f.to_dict() for f in self._random],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        """Inverse of :meth:`to_dict`; ``rates`` ({kind: probability}) is accepted as a shorthand.

        Raises
        ------
        ConfigurationError
            On unknown keys or bad faults.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a fault plan must be a JSON object, got {data!r}")
        unknown = set(data) - {"seed", "scripted", "random", "rates", "path"}
        if unknown:
            raise ConfigurationError(f"unknown fault plan fields {sorted(unknown)}")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigurationError(f"fault plan seed must be an int, got {seed!r}")
        random_faults = [Fault.from_dict(f) for f in _as_list(data.get("random", []), "random")]
        rates = data.get("rates", {})
        if not isinstance(rates, Mapping):
            raise ConfigurationError(f"rates must map kind -> probability, got {rates!r}")
        random_faults += [Fault(kind, probability=p, path=data.get("path")) for kind, p in rates.items()]
        scripted = [Fault.from_dict(f) for f in _as_list(data.get("scripted", []), "scripted")]
        return cls(scripted, random_faults, seed=seed)


def _as_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigurationError(f"{name} must be a JSON list, got {value!r}")
    return value


def _new_rng(seed: int) -> random.Random:
    return random.Random(seed)


# ---- page rewrites (klines) ---------------------------------------------------------------


def rewrite_page(
    draw: Draw,
    rows: list[list[Any]],
    *,
    overlap: list[list[Any]],
    open_row: list[Any] | None,
    limit: int,
) -> list[list[Any]]:
    """Apply a page fault to a klines page.

    Parameters
    ----------
    draw:
        The drawn page fault (its rng makes the rewrite reproducible).
    rows:
        The correct page.
    overlap:
        Rows just before the page (what the previous page ended with), for ``duplicate_rows``.
    open_row:
        The candle still open at now, for ``open_last_candle``.
    limit:
        The page size asked for.
    """
    fault, rng = draw.fault, draw.rng()
    rows = [list(r) for r in rows]
    kind = fault.kind
    k = max(1, round(fault.fraction * len(rows))) if rows else 0
    if kind == "duplicate_rows" and rows:
        picks = sorted(rng.choice(len(rows), size=min(k, len(rows)), replace=False).tolist())
        dup = []
        for i, row in enumerate(rows):
            dup.append(row)
            if i in picks:
                dup.append(list(row))
        return [list(r) for r in overlap[-k:]] + dup
    if kind == "out_of_order" and len(rows) > 1:
        order = rng.permutation(len(rows))
        if (order == np.arange(len(rows))).all():
            order = order[::-1]
        return [rows[i] for i in order]
    if kind == "missing_candles" and rows:
        interior = np.arange(1, len(rows) - 1) if len(rows) > 2 else np.arange(len(rows))
        drop = set(rng.choice(interior, size=min(k, interior.size), replace=False).tolist())
        return [row for i, row in enumerate(rows) if i not in drop]
    if kind == "open_last_candle" and open_row is not None:
        if rows and rows[-1][0] == open_row[0]:
            return rows
        return (rows if len(rows) < limit else rows[:-1]) + [list(open_row)]
    if kind == "seconds_timestamps":
        for row in rows:
            row[0] //= 1000
            row[6] //= 1000
        return rows
    return rows

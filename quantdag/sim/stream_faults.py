"""Faults the simulated exchange's websocket streams inject, and the log of what was injected.

A streaming client must survive what real venues do to long-lived connections (ccxt #22412: a
stalled ``watch_ohlcv``; #26945: trades lost across a reconnect; #17733: books out of sync). Each
:class:`StreamFault` fires once (at once, or at a simulated instant) or every N simulated minutes,
and hits every open connection that carries a matching stream:

================  ===============================================================================
``disconnect``    drop the TCP connection without a close frame (the client sees close code 1006)
``silence``       keep the connection open (pings still answered) but withhold its data for
                  ``duration_s`` simulated seconds, then resume (or never, with ``resume=False``)
``duplicate``     send each of the next ``count`` data messages twice
``out_of_order``  swap each of the next ``count`` pairs of data messages
``depth_gap``     drop the next ``count`` depth events, so the next one has ``U != last u + 1``
``restart``       the stream server goes away (every connection dropped, connections refused)
                  and comes back on the same port after ``delay_s`` wall seconds
================  ===============================================================================

What actually happened is appended to a :class:`StreamFaultLog` (one entry per connection hit, per
message duplicated, swapped or dropped, per silence start and end, per restart), which tests and the
client's benchmark read through ``SimExchange.stream_faults_log`` or ``GET /sim/stream/log``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from quantdag.errors import ConfigurationError
from quantdag.sim.faults import dataclass_from_dict

#: Every stream fault kind.
STREAM_FAULT_KINDS = ("disconnect", "silence", "duplicate", "out_of_order", "depth_gap", "restart")
#: Kinds that change messages rather than the connection.
MESSAGE_FAULTS = frozenset({"duplicate", "out_of_order", "depth_gap"})

_MS_PER_MINUTE = 60_000


@dataclass(frozen=True)
class StreamFault:
    """One stream fault and when it fires.

    Parameters
    ----------
    kind:
        One of :data:`STREAM_FAULT_KINDS`.
    every_min:
        Fire every this many simulated minutes, at UTC multiples of it plus ``offset_s``; None fires once.
    at_ms:
        One-shot faults: not before this simulated instant (None: at once). A one-shot fault waits
        until a matching connection is open (except ``restart``).
    offset_s:
        Periodic faults: simulated seconds after each boundary (0: right at a candle close).
    stream:
        Only connections (and, for message faults, messages) of streams whose name starts with
        this, e.g. ``"btcusdt@depth"``; None: all.
    duration_s:
        ``silence``: simulated seconds the data is withheld.
    resume:
        ``silence``: False keeps the connection open and mute for good (only a reconnect helps).
    count:
        ``duplicate``, ``out_of_order``, ``depth_gap``: messages (pairs) affected per firing.
    delay_s:
        ``restart``: wall seconds the server stays away.

    Raises
    ------
    ConfigurationError
        On an unknown kind or an out-of-range parameter.
    """

    kind: str
    every_min: int | None = None
    at_ms: int | None = None
    offset_s: float = 0.0
    stream: str | None = None
    duration_s: float = 30.0
    resume: bool = True
    count: int = 1
    delay_s: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in STREAM_FAULT_KINDS:
            raise ConfigurationError(f"unknown stream fault kind {self.kind!r}; known: {', '.join(STREAM_FAULT_KINDS)}")
        if self.every_min is not None and (isinstance(self.every_min, bool) or not isinstance(self.every_min, int)
                                           or self.every_min < 1):
            raise ConfigurationError(f"stream fault {self.kind}: every_min must be an int >= 1 or None")
        if self.every_min is not None and self.at_ms is not None:
            raise ConfigurationError(f"stream fault {self.kind}: give every_min or at_ms, not both")
        if self.at_ms is not None and (isinstance(self.at_ms, bool) or not isinstance(self.at_ms, int)):
            raise ConfigurationError(f"stream fault {self.kind}: at_ms must be an int of milliseconds")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(f"stream fault {self.kind}: count must be an int >= 1, got {self.count!r}")
        if self.stream is not None and (not isinstance(self.stream, str) or not self.stream):
            raise ConfigurationError(f"stream fault {self.kind}: stream must be a non-empty string or None")
        if not isinstance(self.resume, bool):
            raise ConfigurationError(f"stream fault {self.kind}: resume must be true or false")
        for name in ("offset_s", "duration_s", "delay_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigurationError(f"stream fault {self.kind}: {name} must be a number >= 0, got {value!r}")
        if self.every_min is not None and self.offset_s >= self.every_min * 60:
            raise ConfigurationError(f"stream fault {self.kind}: offset_s must be shorter than every_min")

    def matches(self, stream_name: str) -> bool:
        """Whether messages of ``stream_name`` are eligible."""
        return self.stream is None or stream_name.startswith(self.stream)

    def first_fire_ms(self, now_ms: int) -> int:
        """When this fault first fires if added at ``now_ms``."""
        if self.every_min is None:
            return now_ms if self.at_ms is None else self.at_ms
        return self.next_fire_ms(now_ms - 1)

    def next_fire_ms(self, after_ms: int) -> int:
        """The first periodic firing strictly after ``after_ms``."""
        period = (self.every_min or 1) * _MS_PER_MINUTE
        offset = round(self.offset_s * 1000)
        return ((after_ms - offset) // period + 1) * period + offset

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamFault:
        """Build from JSON-like data.

        Raises
        ------
        ConfigurationError
            On unknown keys or bad values.
        """
        return dataclass_from_dict(cls, data, "stream fault")


class StreamFaultLog:
    """What the stream server injected, oldest first; thread-safe and bounded."""

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = 0

    def add(self, kind: str, sim_ms: int, **detail: Any) -> dict[str, Any]:
        """Record one effect: ``{"seq", "kind", "sim_ms", "wall_ms", **detail}``."""
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, "kind": kind, "sim_ms": int(sim_ms), "wall_ms": time.time_ns() // 1_000_000,
                     **detail}
            self._entries.append(entry)
            return dict(entry)

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Copies of the entries after ``seq``."""
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > seq]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class StreamFaultPlan:
    """Scheduled stream faults: which are due at a simulated instant; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[list[Any]] = []  # [fault, next fire ms or None until the server sees it]

    def add(self, fault: StreamFault) -> StreamFault:
        """Schedule ``fault`` (its first firing is fixed on the server's next tick)."""
        if not isinstance(fault, StreamFault):
            raise ConfigurationError(f"stream faults must be StreamFault instances, got {fault!r}")
        with self._lock:
            self._entries.append([fault, None])
        return fault

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def due(self, now_ms: int, has_target: Callable[[StreamFault], bool]) -> list[StreamFault]:
        """Faults to fire at ``now_ms``; one-shot faults wait for a target and are then dropped.

        A periodic fault with no target at its firing is skipped; after a clock jump it fires once and
        is rescheduled after now (missed firings are not replayed).
        """
        fire: list[StreamFault] = []
        with self._lock:
            keep = []
            for entry in self._entries:
                fault, at = entry
                if at is None:
                    at = entry[1] = fault.first_fire_ms(now_ms)
                if at > now_ms:
                    keep.append(entry)
                    continue
                target = has_target(fault)
                if fault.every_min is None:
                    if target:
                        fire.append(fault)
                    else:
                        keep.append(entry)
                    continue
                if target:
                    fire.append(fault)
                entry[1] = fault.next_fire_ms(now_ms)
                keep.append(entry)
            self._entries = keep
        return fire

    def to_list(self) -> list[dict[str, Any]]:
        """JSON-ready: each fault with ``next_ms`` (its next firing, None until the server has seen it)."""
        with self._lock:
            return [{**fault.to_dict(), "next_ms": at} for fault, at in self._entries]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


__all__ = ["MESSAGE_FAULTS", "STREAM_FAULT_KINDS", "StreamFault", "StreamFaultLog", "StreamFaultPlan"]

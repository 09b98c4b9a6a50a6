"""The simulated exchange's notion of "now", injectable so tests can pin or move time.

The model only ever calls ``clock()`` and gets milliseconds since the epoch; any callable does.
:class:`SimClock` is the default: the wall clock, optionally shifted or frozen, and movable at run
time (the HTTP control endpoint ``/sim/clock`` uses it), so a test in another process can step the
exchange through a candle close.
"""

from __future__ import annotations

import threading
import time

from quantdag.errors import ConfigurationError


def wall_clock_ms() -> int:
    """Real time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class SimClock:
    """Wall clock with an optional offset, or a frozen instant.

    Parameters
    ----------
    now_ms:
        Freeze the clock at this instant; None follows the wall clock.
    offset_ms:
        Added to the wall clock while the clock is not frozen.
    """

    def __init__(self, now_ms: int | None = None, *, offset_ms: int = 0) -> None:
        self._lock = threading.Lock()
        self._frozen: int | None = None if now_ms is None else _check_ms(now_ms)
        self._offset = int(offset_ms)

    def __call__(self) -> int:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return wall_clock_ms() + self._offset

    def __repr__(self) -> str:
        with self._lock:
            if self._frozen is not None:
                return f"SimClock(now_ms={self._frozen})"
            return f"SimClock(offset_ms={self._offset})"

    @property
    def frozen(self) -> bool:
        """True while the clock is pinned to one instant."""
        with self._lock:
            return self._frozen is not None

    def set(self, now_ms: int) -> None:
        """Freeze the clock at ``now_ms``."""
        with self._lock:
            self._frozen = _check_ms(now_ms)

    def advance(self, ms: int) -> None:
        """Move the clock forward (or back, if negative) by ``ms``, frozen or not."""
        with self._lock:
            if self._frozen is not None:
                self._frozen = _check_ms(self._frozen + int(ms))
            else:
                self._offset += int(ms)

    def follow_wall(self, offset_ms: int = 0) -> None:
        """Unfreeze: follow the wall clock again, shifted by ``offset_ms``."""
        with self._lock:
            self._frozen = None
            self._offset = int(offset_ms)

    def state(self) -> dict[str, int | bool | None]:
        """JSON-ready description (for ``GET /sim/clock``)."""
        with self._lock:
            frozen = self._frozen
            offset = self._offset
        now = frozen if frozen is not None else wall_clock_ms() + offset
        return {"now_ms": now, "frozen": frozen is not None, "offset_ms": None if frozen is not None else offset}


def _check_ms(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"clock time must be a non-negative int of milliseconds, got {value!r}")
    return value

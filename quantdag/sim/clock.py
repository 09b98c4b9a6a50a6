"""The simulated exchange's notion of "now", injectable so tests can pin or move time.

The model only ever calls ``clock()`` and gets milliseconds since the epoch; any callable does.
:class:`SimClock` is the default: the wall clock, optionally shifted or frozen, and movable at run
time (the HTTP control endpoint ``/sim/clock`` uses it), so a test in another process can step the
exchange through a candle close. A speed factor makes it run K times faster than wall time from a
start instant, so a test (or the stream benchmark) can live through an hour of market in a minute:
REST and the websocket streams read the same clock, so both speed up together.
"""

from __future__ import annotations

import math
import threading
import time

from quantdag.errors import ConfigurationError


def wall_clock_ms() -> int:
    """Real time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class SimClock:
    """Wall clock with an optional offset, a frozen instant, or a clock running ``speed`` x wall time.

    Parameters
    ----------
    now_ms:
        Without ``speed``: freeze the clock at this instant; None follows the wall clock.
        With ``speed``: the instant the clock starts running from (None: the wall clock + offset).
    offset_ms:
        Added to the wall clock while the clock follows it (and to the start instant when
        ``speed`` is given without ``now_ms``).
    speed:
        Run this many times faster than wall time (e.g. 60: a simulated minute per second).
        None: 1, or frozen when ``now_ms`` is given (the historical meaning of ``SimClock(t)``).

    Raises
    ------
    ConfigurationError
        On a negative or non-int instant, or a speed that is not a positive finite number.
    """

    def __init__(self, now_ms: int | None = None, *, offset_ms: int = 0, speed: float | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen: int | None = None
        self._offset = int(offset_ms)
        self._speed = 1.0
        self._anchor_sim = 0
        self._anchor_mono = 0
        if speed is None:
            self._frozen = None if now_ms is None else _check_ms(now_ms)
        else:
            start = wall_clock_ms() + self._offset if now_ms is None else _check_ms(now_ms)
            self._run(start, _check_speed(speed))

    def __call__(self) -> int:
        with self._lock:
            return self._now()

    def _now(self) -> int:
        if self._frozen is not None:
            return self._frozen
        if self._speed == 1.0:
            return wall_clock_ms() + self._offset
        # monotonic: a scaled clock must never step back with an NTP adjustment of the wall clock
        return self._anchor_sim + int((time.monotonic_ns() - self._anchor_mono) * self._speed) // 1_000_000

    def _run(self, start_ms: int, speed: float) -> None:
        """Run from ``start_ms`` at ``speed`` (lock held or not yet shared)."""
        self._frozen = None
        self._speed = speed
        self._anchor_sim = start_ms
        self._anchor_mono = time.monotonic_ns()
        if speed == 1.0:
            self._offset = start_ms - wall_clock_ms()

    def __repr__(self) -> str:
        with self._lock:
            if self._frozen is not None:
                return f"SimClock(now_ms={self._frozen})"
            if self._speed != 1.0:
                return f"SimClock(now_ms={self._now()}, speed={self._speed:g})"
            return f"SimClock(offset_ms={self._offset})"

    @property
    def frozen(self) -> bool:
        """True while the clock is pinned to one instant."""
        with self._lock:
            return self._frozen is not None

    @property
    def speed(self) -> float:
        """How many simulated milliseconds pass per wall millisecond (0.0 while frozen)."""
        with self._lock:
            return 0.0 if self._frozen is not None else self._speed

    def set(self, now_ms: int) -> None:
        """Freeze the clock at ``now_ms``."""
        with self._lock:
            self._frozen = _check_ms(now_ms)

    def advance(self, ms: int) -> None:
        """Move the clock forward (or back, if negative) by ``ms``, frozen, following the wall or sped up."""
        with self._lock:
            if self._frozen is not None:
                self._frozen = _check_ms(self._frozen + int(ms))
            elif self._speed == 1.0:
                self._offset += int(ms)
            else:
                self._anchor_sim += int(ms)

    def follow_wall(self, offset_ms: int = 0) -> None:
        """Unfreeze: follow the wall clock again (speed 1), shifted by ``offset_ms``."""
        with self._lock:
            self._frozen = None
            self._speed = 1.0
            self._offset = int(offset_ms)

    def set_speed(self, speed: float, *, now_ms: int | None = None) -> None:
        """Run at ``speed`` x wall time from ``now_ms`` (default: from the current instant, unfrozen).

        Raises
        ------
        ConfigurationError
            If ``speed`` is not a positive finite number or ``now_ms`` is not a valid instant.
        """
        speed = _check_speed(speed)
        start = None if now_ms is None else _check_ms(now_ms)
        with self._lock:
            self._run(self._now() if start is None else start, speed)

    def state(self) -> dict[str, int | float | bool | None]:
        """JSON-ready description (for ``GET /sim/clock``); ``offset_ms`` only while following the wall."""
        with self._lock:
            frozen = self._frozen is not None
            now = self._now()
            speed = 0.0 if frozen else self._speed
            offset = self._offset if not frozen and self._speed == 1.0 else None
        return {"now_ms": now, "frozen": frozen, "offset_ms": offset, "speed": speed}


def _check_speed(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"clock speed must be a positive finite number, got {value!r}")
    return float(value)


def _check_ms(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"clock time must be a non-negative int of milliseconds, got {value!r}")
    return value

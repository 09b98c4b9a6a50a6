"""SimClock: wall clock, offset, frozen and moved."""

from __future__ import annotations

import pytest

from quantdag.errors import ConfigurationError
from quantdag.sim import SimClock, wall_clock_ms


def test_clock_default_follows_wall_clock() -> None:
    before = wall_clock_ms()
    now = SimClock()()
    assert before <= now <= wall_clock_ms()


def test_clock_offset_shifts_wall_clock() -> None:
    shifted = SimClock(offset_ms=-86_400_000)()
    assert abs(wall_clock_ms() - 86_400_000 - shifted) < 1000


def test_clock_frozen_set_and_advance() -> None:
    clock = SimClock(1_000)
    assert clock() == 1_000 and clock.frozen
    clock.advance(500)
    assert clock() == 1_500
    clock.set(10_000)
    assert clock() == 10_000
    clock.follow_wall(offset_ms=5)
    assert not clock.frozen and clock.state()["offset_ms"] == 5


def test_clock_negative_or_non_int_time_raises() -> None:
    with pytest.raises(ConfigurationError):
        SimClock(-1)
    with pytest.raises(ConfigurationError):
        SimClock(1.5)  # type: ignore[arg-type]

"""Exact decimal formatting of Binance strings."""

from __future__ import annotations

import pytest

from quantdag.sim.public_api import fmt_float, fmt_units


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [(6_000_001, 2, "60000.01000000"), (5, 5, "0.00005000"), (123, 0, "123.00000000"), (10_000, 4, "1.00000000"),
     (123_456_789, 8, "1.23456789")],
)
def test_fmt_units_exact_eight_decimals(units: int, decimals: int, text: str) -> None:
    assert fmt_units(units, decimals) == text


def test_fmt_float_on_tick_grid_round_trips() -> None:
    assert fmt_float(98487.29000000001, 2) == "98487.29000000"
    assert float(fmt_float(0.9999, 4)) == 0.9999

"""SimMarket validation and universe ordering."""

from __future__ import annotations

import pytest

from quantdag.errors import ConfigurationError
from quantdag.sim import DEFAULT_MARKETS, SimMarket
from quantdag.sim.markets import check_universe


def _spec(**overrides: object) -> SimMarket:
    args = {"symbol": "XRP/USDT", "start_price": 0.5, "price_decimals": 4, "qty_decimals": 0,
            "daily_volume": 1e8, "avg_trade_size": 500.0, **overrides}
    return SimMarket(**args)  # type: ignore[arg-type]


def test_default_universe_has_required_markets() -> None:
    symbols = {m.symbol for m in DEFAULT_MARKETS}
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "BTC/USDC", "USDC/USDT"} <= symbols


def test_spec_ids_and_sizes() -> None:
    spec = _spec()
    assert (spec.id, spec.base, spec.quote) == ("XRPUSDT", "XRP", "USDT")
    assert spec.tick == 0.0001 and spec.step == 1.0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"symbol": "xrpusdt"}, "symbol"),
        ({"kind": "meme"}, "kind"),
        ({"price_decimals": 9}, "price_decimals"),
        ({"start_price": 0.0}, "start_price"),
        ({"start_price": 0.005}, "under 100 ticks"),
        ({"kind": "cross"}, "two distinct legs"),
        ({"legs": ("BTC/USDT", "USDC/USDT")}, "only kind='cross'"),
    ],
)
def test_spec_bad_values_raise(overrides: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        _spec(**overrides)


def test_universe_orders_cross_markets_after_legs_and_rejects_bad_ones() -> None:
    cross = next(m for m in DEFAULT_MARKETS if m.kind == "cross")
    ordered = check_universe((cross, *[m for m in DEFAULT_MARKETS if m is not cross]))
    assert ordered[-1] is cross
    with pytest.raises(ConfigurationError, match="leg"):
        check_universe((cross,))
    with pytest.raises(ConfigurationError, match="duplicate"):
        check_universe((_spec(), _spec()))

"""run_portfolio against a plain-Python reference of the rebalancing arithmetic (the oracle)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.errors import DataError
from quantdag.portfolio import run_portfolio

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _market(rng, symbols, n, holes=0.0):
    rows = []
    for s in symbols:
        px = 100.0 * rng.uniform(0.5, 2)
        for t in range(n):
            o = px
            px = px * math.exp(rng.normal(0, 0.02))
            if rng.random() < holes:
                continue
            rows.append({"ts": T0 + timedelta(hours=t), "symbol": s, "open": o, "high": max(o, px) * 1.01,
                         "low": min(o, px) * 0.99, "close": px, "volume": 1.0})  # fmt: skip
    return pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def _weights(rng, candles, every=0.2, short=False):
    pick = candles.filter(pl.Series(rng.random(candles.height) < every))
    lo = -0.6 if short else 0.0
    return pick.select("ts", "symbol").with_columns(weight=pl.Series(rng.uniform(lo, 0.6, pick.height)))


def reference(candles, weights, fee, slippage, init_cash, min_notional=0.0):
    """The rules of quantdag.portfolio.engine, one candle and one market at a time, in plain Python."""
    times = sorted(set(candles["ts"].to_list()))
    symbols = sorted(set(candles["symbol"].to_list()))
    bars = {(r["ts"], r["symbol"]): r for r in candles.iter_rows(named=True)}
    targets = {(r["ts"], r["symbol"]): r["weight"] for r in weights.iter_rows(named=True)}
    units = dict.fromkeys(symbols, 0.0)
    last: dict[str, float] = {}
    pending: dict[str, float] = {}
    cash, curve, fills, cut = init_cash, [], [], 0
    for t in times:
        ready = {s: pending[s] for s in sorted(pending) if (t, s) in bars}  # markets in symbol order
        if ready:
            value = cash + sum(u * (bars[(t, s)]["open"] if (t, s) in bars else last[s]) for s, u in units.items() if u)
            orders = {}
            for s, w in ready.items():
                del pending[s]
                d = w * value / bars[(t, s)]["open"] - units[s]
                if d != 0 and abs(d) * bars[(t, s)]["open"] >= min_notional:
                    orders[s] = d
            for s, d in orders.items():
                if d < 0:
                    px = bars[(t, s)]["open"] * (1 - slippage)
                    cash += -d * px * (1 - fee)
                    units[s] += d
                    fills.append((t, s, d))
            need = sum(d * bars[(t, s)]["open"] * (1 + slippage) * (1 + fee) for s, d in orders.items() if d > 0)
            scale = min(1.0, max(cash, 0.0) / need) if need > 0 else 1.0
            for s, d in orders.items():
                if d > 0:
                    if scale < 1:
                        d, cut = d * scale, cut + 1
                        if d * bars[(t, s)]["open"] < max(min_notional, 1e-12 * abs(value)):
                            continue  # scaled to nothing: counted, not filled
                    px = bars[(t, s)]["open"] * (1 + slippage)
                    cash -= d * px * (1 + fee)
                    units[s] += d
                    fills.append((t, s, d))
        for s in symbols:
            if (t, s) in bars:
                last[s] = bars[(t, s)]["close"]
            if (t, s) in targets:
                pending[s] = targets[(t, s)]
        curve.append(cash + sum(u * last[s] for s, u in units.items() if u))
    return curve, fills, cut


@pytest.mark.parametrize("seed", range(12))
def test_portfolio_matches_the_plain_python_reference(seed):
    rng = np.random.default_rng(seed)
    candles = _market(rng, ["AAA", "BBB", "CCC", "DDD"][: 2 + seed % 3], 120, holes=0.1 if seed % 2 else 0.0)
    weights = _weights(rng, candles, short=seed % 3 == 0)
    got = run_portfolio(candles, weights, fee=0.001, slippage=0.0005, init_cash=10_000.0)
    curve, fills, cut = reference(candles, weights, 0.001, 0.0005, 10_000.0)
    np.testing.assert_allclose(got.equity["equity"].to_numpy(), curve, rtol=1e-9)
    assert got.final_equity == pytest.approx(curve[-1], rel=1e-9)
    assert got.trades.height == len(fills) and got.metrics["n_cut_for_cash"] == cut
    np.testing.assert_allclose(got.trades["qty"].to_numpy(), [f[2] for f in fills], rtol=1e-9)


def test_a_weight_decided_at_a_close_fills_at_the_next_open():
    candles = _market(np.random.default_rng(1), ["AAA"], 5)
    weights = pl.DataFrame({"ts": [T0 + timedelta(hours=2)], "symbol": ["AAA"], "weight": [0.5]}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    got = run_portfolio(candles, weights, fee=0.0, slippage=0.0)
    (trade,) = got.trades.iter_rows(named=True)
    assert trade["ts"] == T0 + timedelta(hours=3) and trade["price"] == candles["open"][3]
    assert got.equity["equity"][:3].to_list() == [10_000.0] * 3  # nothing held before the fill


def test_buys_cash_cannot_cover_are_scaled_and_counted_never_dropped():
    candles = _market(np.random.default_rng(2), ["AAA", "BBB"], 4)
    weights = pl.DataFrame({"ts": [T0, T0], "symbol": ["AAA", "BBB"], "weight": [0.6, 0.6]}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    got = run_portfolio(candles, weights)
    assert got.metrics["n_cut_for_cash"] == 2 and got.trades.height == 2
    assert got.equity["cash"][1] == pytest.approx(0.0, abs=1e-6)  # every unit of cash spent, none borrowed


def test_bad_input_is_refused_naming_it():
    candles = _market(np.random.default_rng(3), ["AAA"], 3)
    bad = pl.DataFrame({"ts": [T0], "symbol": ["ZZZ"], "weight": [0.5]}).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    with pytest.raises(DataError, match="ZZZ"):
        run_portfolio(candles, bad)
    dup = pl.concat([candles.head(1), candles.head(1)])
    with pytest.raises(DataError, match="duplicate"):
        run_portfolio(dup, bad.head(0))

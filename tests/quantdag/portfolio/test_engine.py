"""run_portfolio against a plain-Python reference of the rebalancing arithmetic (the oracle)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from quantdag.errors import DataError
from quantdag.portfolio import run_portfolio
from tests.quantdag.portfolio.reference import T0, _market, _weights, reference


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

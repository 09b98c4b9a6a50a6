"""allocate: walk-forward weights use only closes up to their stamp, and each method's defining property holds."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag.errors import ConfigurationError, DataError
from quantdag.portfolio import run_portfolio
from quantdag.portfolio.allocate import METHODS, allocate

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
LONG_ONLY = ("equal_weight", "inverse_vol", "erc", "hrp", "min_cvar", "max_sharpe")
HOURS_PER_YEAR = 365 * 24


def market(n: int = 400, vols=(0.005, 0.01, 0.02, 0.04), drift: float = 0.0005, seed: int = 1,
           holes: dict[str, list[int]] | None = None) -> pl.DataFrame:  # fmt: skip
    """Hourly long candles of len(vols) symbols S0..; ``holes`` drops the listed candle positions of a symbol."""
    rng = np.random.default_rng(seed)
    frames = []
    for j, vol in enumerate(vols):
        close = 100.0 * np.exp(np.cumsum(rng.normal(drift, vol, n)))
        keep = np.ones(n, dtype=bool)
        keep[(holes or {}).get(f"S{j}", [])] = False
        frames.append(pl.DataFrame({
            "ts": [T0 + timedelta(hours=i) for i in range(n)], "symbol": f"S{j}",
            "open": np.append(100.0, close[:-1]), "high": close * 1.01, "low": close * 0.99, "close": close,
            "volume": np.ones(n),
        }).filter(pl.Series(keep)))  # fmt: skip
    return pl.concat(frames).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC"))).sort("ts", "symbol")


def wide_returns(candles: pl.DataFrame) -> tuple[list, np.ndarray]:
    w = candles.pivot(on="symbol", index="ts", values="close").sort("ts")
    closes = w.drop("ts").to_numpy()
    return w["ts"].to_list(), closes[1:] / closes[:-1] - 1.0


def by_ts(weights: pl.DataFrame) -> dict:
    return {ts: dict(zip(g["symbol"], g["weight"], strict=True)) for (ts,), g in weights.group_by("ts", maintain_order=True)}


@pytest.mark.parametrize("method", METHODS)
def test_weights_stamped_at_or_before_t_ignore_every_later_candle(method):
    candles = market(holes={"S3": [100, 101, 250]})  # S3 drops out of the fits whose window holds its gap
    cut = T0 + timedelta(hours=260)
    shock = pl.Series(np.random.default_rng(9).uniform(0.5, 1.5, candles.height))
    shocked = candles.with_columns(pl.when(pl.col("ts") > cut).then(pl.col(c) * shock).otherwise(pl.col(c)).alias(c)
                                   for c in ("open", "high", "low", "close", "volume"))  # fmt: skip
    kw = {"lookback": 60, "every": 20}
    before, after = allocate(candles, method, **kw), allocate(shocked, method, **kw)
    assert before.filter(pl.col("ts") > cut).height and before.filter(pl.col("ts") <= cut).height
    assert before.filter(pl.col("ts") <= cut).equals(after.filter(pl.col("ts") <= cut))
    assert not before.equals(after) or method == "equal_weight"


@pytest.mark.parametrize("method", LONG_ONLY)
def test_long_only_methods_are_fully_invested_and_non_negative(method):
    w = allocate(market(), method, lookback=60, every=40)
    assert w.schema == {"ts": pl.Datetime("ms", "UTC"), "symbol": pl.Utf8, "weight": pl.Float64}
    assert w.height == 4 * len(range(60, 400, 40)) and w["weight"].min() >= 0
    sums = w.group_by("ts").agg(pl.col("weight").sum())["weight"].to_numpy()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)


def test_equal_weight_is_one_over_n():
    w = allocate(market(), "equal_weight", lookback=30, every=7)
    assert (w["weight"] == 0.25).all()
    assert w["ts"].min() == T0 + timedelta(hours=30)  # min_history defaults to lookback: 30 returns behind it


def test_inverse_vol_orders_weights_inversely_to_vol_and_matches_normalised_inverse_std():
    candles = market()
    w = allocate(candles, "inverse_vol", lookback=90, every=24)
    times, rets = wide_returns(candles)
    for ts, got in by_ts(w).items():
        t = times.index(ts)  # rets[t - 1] is the return into candle t
        inv = 1.0 / rets[t - 90:t].std(axis=0, ddof=1)
        want = inv / inv.sum()
        np.testing.assert_allclose([got[f"S{j}"] for j in range(4)], want, rtol=0, atol=1e-12)
        assert list(np.argsort([-got[f"S{j}"] for j in range(4)])) == [0, 1, 2, 3]  # vols 0.5% < 1% < 2% < 4%


def test_vol_target_reaches_the_target_trailing_vol_below_max_leverage_and_caps_gross_above():
    candles = market(vols=(0.002, 0.003, 0.004))  # inverse-vol portfolio ~10% a year: 8% needs gross < 1
    times, rets = wide_returns(candles)
    w = allocate(candles, "vol_target", lookback=90, every=24, vol_target=0.08, max_leverage=1.0, timeframe="1h")
    for ts, got in by_ts(w).items():
        t, x = times.index(ts), np.array([got[f"S{j}"] for j in range(3)])
        assert x.sum() < 1.0
        assert abs((rets[t - 90:t] @ x).std(ddof=1) * np.sqrt(HOURS_PER_YEAR) - 0.08) < 1e-9
    inferred = allocate(candles, "vol_target", lookback=90, every=24, vol_target=0.08)  # spacing inferred: 1h
    np.testing.assert_allclose(inferred["weight"], w["weight"], rtol=1e-12)
    capped = allocate(candles, "vol_target", lookback=90, every=24, vol_target=2.0, max_leverage=1.5)
    np.testing.assert_allclose(capped.group_by("ts").agg(pl.col("weight").sum())["weight"], 1.5, rtol=1e-12)


def test_erc_risk_contributions_are_equal():
    candles = market()
    times, rets = wide_returns(candles)
    for ts, got in by_ts(allocate(candles, "erc", lookback=90, every=60)).items():
        t, x = times.index(ts), np.array([got[f"S{j}"] for j in range(4)])
        cov = np.cov(rets[t - 90:t], rowvar=False)
        rc = x * (cov @ x) / (x @ cov @ x)
        np.testing.assert_allclose(rc, 0.25, atol=1e-3)


def turnover(w: pl.DataFrame) -> float:
    wide = w.pivot(on="symbol", index="ts", values="weight").sort("ts").drop("ts").to_numpy()
    return float(np.abs(np.diff(wide, axis=0)).sum())


def test_max_sharpe_with_a_larger_turnover_penalty_changes_weights_less_between_rebalances():
    candles = market(vols=(0.01, 0.012, 0.015, 0.02), drift=0.001, seed=4)
    free = allocate(candles, "max_sharpe", lookback=60, every=10, turnover_penalty=0.0)
    sticky = allocate(candles, "max_sharpe", lookback=60, every=10, turnover_penalty=0.002)
    assert turnover(free) > 0.5
    assert turnover(sticky) < 0.5 * turnover(free)


def test_weekly_every_stamps_exactly_the_last_candle_of_each_iso_week():
    candles = market(n=24 * 30)  # 2026-01-01 (a Thursday) .. 2026-01-30 (a Friday)
    w = allocate(candles, "inverse_vol", lookback=48, every="weekly")
    times = sorted(set(candles["ts"].to_list()))
    week = [t.isocalendar()[:2] for t in times]
    last = [t for i, t in enumerate(times) if i >= 48 and (i + 1 == len(times) or week[i + 1] != week[i])]
    assert sorted(set(w["ts"].to_list())) == last
    assert [t.weekday() for t in last[:-1]] == [6, 6, 6, 6] and all(t.hour == 23 for t in last[:-1])  # Sundays 23:00
    assert last[-1] == times[-1]  # the final (incomplete) week's last candle too


def test_int_every_rebalances_every_k_candles_from_min_history():
    w = allocate(market(), "equal_weight", lookback=60, every=25, min_history=10)
    stamps = sorted(set(w["ts"].to_list()))
    assert stamps[0] == T0 + timedelta(hours=10)
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {timedelta(hours=25)}


def test_symbol_with_a_missing_return_in_its_window_gets_weight_zero_and_no_row_without_a_candle():
    candles = market(holes={"S1": [150]})
    w = by_ts(allocate(candles, "inverse_vol", lookback=20, every=10))
    assert w[T0 + timedelta(hours=140)]["S1"] > 0  # window returns 121..140: complete
    assert w[T0 + timedelta(hours=160)]["S1"] == 0.0  # returns into 150 and 151 are missing
    assert "S1" not in w[T0 + timedelta(hours=150)]  # no candle at 150: no row (run_portfolio rejects one)
    assert w[T0 + timedelta(hours=180)]["S1"] > 0  # window 161..180 is clean again
    assert abs(sum(w[T0 + timedelta(hours=160)].values()) - 1.0) < 1e-12


@pytest.mark.parametrize("method", [m for m in METHODS if m != "equal_weight"])
def test_symbol_with_a_flat_price_is_left_out_without_failing_the_fit(method, caplog):
    candles = market(n=200).with_columns(close=pl.when(pl.col("symbol") == "S0").then(100.0).otherwise(pl.col("close")))
    with caplog.at_level(logging.WARNING, logger="quantdag.portfolio.allocate"):
        w = allocate(candles, method, lookback=60, every=50)
    assert (w.filter(pl.col("symbol") == "S0")["weight"] == 0).all()
    assert (w.filter(pl.col("symbol") != "S0")["weight"] > 0).any() and "failed" not in caplog.text


@pytest.mark.parametrize("method", ["hrp", "min_cvar", "max_sharpe"])
def test_same_input_twice_gives_an_identical_frame(method):
    candles = market()
    assert allocate(candles, method, lookback=60, every=30).equals(allocate(candles, method, lookback=60, every=30))


def test_failed_max_sharpe_fits_fall_back_to_previous_or_equal_weights_and_log_the_count(caplog):
    candles = market(vols=(0.01, 0.01, 0.01), drift=-0.01)  # every asset loses: no max Sharpe portfolio exists
    with caplog.at_level(logging.WARNING, logger="quantdag.portfolio.allocate"):
        w = allocate(candles, "max_sharpe", lookback=60, every=100)
    assert (w["weight"] - 1 / 3).abs().max() < 1e-12
    assert "4 of 4 rebalance fit(s) failed" in caplog.text


def test_real_kraken_hrp_weights_are_valid_and_feed_run_portfolio():
    markets = ("BTC_USD", "BTC_USDT", "BTC_USDC")
    candles = pl.concat([load_real_candles("kraken", m, "1h").with_columns(symbol=pl.lit(m.replace("_", "/")))
                         for m in markets]).select("ts", "symbol", "open", "high", "low", "close", "volume")  # fmt: skip
    w = allocate(candles, "hrp", lookback=24 * 14, every="daily", timeframe="1h")
    assert w.height == 3 * (90 - 14)  # one rebalance per day once 14 days of returns exist (day 15 .. 90)
    assert w["weight"].is_finite().all() and w["weight"].min() >= 0
    np.testing.assert_allclose(w.group_by("ts").agg(pl.col("weight").sum())["weight"], 1.0, atol=1e-9)
    result = run_portfolio(candles, w, timeframe="1h")
    assert np.isfinite(result.final_equity) and result.trades.height > 0


def test_unknown_method_raises_configuration_error_naming_it():
    with pytest.raises(ConfigurationError, match="'kelly'"):
        allocate(market(n=50), "kelly")


@pytest.mark.parametrize(("kwargs", "named"), [({"every": "hourly"}, "'hourly'"), ({"every": 0}, "0"),
                                               ({"lookback": 1}, "1"), ({"cvar_beta": 1.5}, "1.5"),
                                               ({"timeframe": "7x"}, "'7x'")])  # fmt: skip
def test_bad_arguments_raise_configuration_error_naming_the_value(kwargs, named):
    with pytest.raises(ConfigurationError, match=named):
        allocate(market(n=50), "inverse_vol", **kwargs)


def test_bad_frames_raise_data_error():
    candles = market(n=50)
    with pytest.raises(DataError, match="close"):
        allocate(candles.drop("close"))
    with pytest.raises(DataError, match="duplicate"):
        allocate(pl.concat([candles, candles.head(1)]))


def test_fast_methods_do_not_import_skfolio():
    code = ("import sys, polars as pl; from datetime import datetime, timezone; "
            "from quantdag.portfolio.allocate import allocate; "
            "c = pl.DataFrame({'ts': [datetime(2026, 1, 1, h, tzinfo=timezone.utc) for h in range(10)] * 2, "
            "'symbol': ['A'] * 10 + ['B'] * 10, 'close': [float(100 + i % 3) for i in range(20)]}); "
            "[allocate(c, m, lookback=3, every=2) for m in ('equal_weight', 'inverse_vol', 'vol_target')]; "
            "assert 'skfolio' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])

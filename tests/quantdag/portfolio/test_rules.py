"""Rebalancing rules and strategies' sub-ledgers of run_portfolio, against a plain-Python oracle and by hand."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from quantdag.errors import ConfigurationError, DataError
from quantdag.portfolio import run_portfolio
from quantdag.portfolio.risk import RiskRules
from tests.quantdag.portfolio.reference import (
    T0,
    _market,
    _weights,
    frame,
    held_weights,
    reference_portfolio,
    strategy_weights,
    weight_rows,
)

INIT = 10_000.0
COSTS = {"fee": 0.001, "slippage": 0.0005}
NO_COSTS = {"fee": 0.0, "slippage": 0.0}
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def _case(seed):
    """A seeded multi-strategy case: 2-3 strategies, 2-4 markets, holes on odd seeds, shorts on every third."""
    rng = np.random.default_rng(100 + seed)
    candles = _market(rng, SYMBOLS[: 2 + seed % 3], 120, holes=0.1 if seed % 2 else 0.0)
    strategies = ["alpha", "beta", "gamma"][: 2 + seed % 2]
    weights = strategy_weights(rng, candles, strategies, every=0.15, short=seed % 3 == 0)
    raw = rng.uniform(0.2, 1.0, len(strategies))
    shares = dict(zip(strategies, (raw / raw.sum()).tolist()))
    return candles, weights, shares


def _mid_notional_by_candle(result, candles):
    """Each fill candle's traded notional at the open (mid) price."""
    opens = candles.select("ts", "symbol", "open")
    return (result.trades.join(opens, on=["ts", "symbol"]).group_by("ts")
            .agg((pl.col("qty").abs() * pl.col("open")).sum().alias("mid")))  # fmt: skip


# -- 1. the multi-strategy rules against the plain-Python oracle ---------------------------------------------


def _extra(seed):
    return {"min_notional": 150.0 if seed in (3, 9) else 0.0, "turnover_cap": 0.25 if seed in (2, 6) else None}


ORACLE_CASES = [pytest.param(s, _extra(s), id=str(s)) for s in range(10)]
ORACLE_CASES.append(pytest.param(1, {"min_notional": 150.0}, id="1-min_notional"))  # cash dust below zero, no buy: no 0/0


@pytest.mark.parametrize(("seed", "extra"), ORACLE_CASES)
def test_sub_ledgers_match_the_plain_python_reference(seed, extra):
    candles, weights, shares = _case(seed)
    got = run_portfolio(candles, weights, shares=shares, init_cash=INIT, rebalance="signal", **COSTS, **extra)
    want = reference_portfolio(candles, weights, shares=shares, init_cash=INIT, **COSTS, **extra)

    np.testing.assert_allclose(got.equity["equity"].to_numpy(), want.curve, rtol=1e-9)
    assert [(r["ts"], r["symbol"]) for r in got.trades.iter_rows(named=True)] == [f[:2] for f in want.fills]
    np.testing.assert_allclose(got.trades["qty"].to_numpy(), [f[2] for f in want.fills], rtol=1e-9)
    for k in ("n_cut_for_cash", "n_below_min_notional", "n_turnover_capped"):
        assert got.metrics[k] == want.counts[k], k
    for s, curve in want.strategy_curves.items():
        np.testing.assert_allclose(got.strategy_equity[s].to_numpy(), curve, rtol=1e-9, atol=1e-9 * INIT)
    assert got.attribution.height == len(want.attribution)
    for row in got.attribution.iter_rows(named=True):
        ref = want.attribution[(row["strategy"], row["symbol"])]
        for col in ("trading_pnl", "fees", "slippage", "net_pnl"):
            assert row[col] == pytest.approx(ref[col], rel=1e-9, abs=1e-9 * INIT), (row["strategy"], row["symbol"], col)


def test_the_reference_cases_exercise_every_rule():
    """The oracle comparison is only worth something if its cases hit crosses, cuts, caps and skips."""
    seen = {"n_cut_for_cash": 0, "n_below_min_notional": 0, "n_turnover_capped": 0, "n_crossed": 0}
    for seed in range(10):
        candles, weights, shares = _case(seed)
        want = reference_portfolio(candles, weights, shares=shares, init_cash=INIT, **COSTS, **_extra(seed))
        for k in seen:
            seen[k] += want.counts[k]
    assert all(v > 0 for v in seen.values()), seen


# -- 2. properties ------------------------------------------------------------------------------------------

PROPERTY_CONFIGS = [
    {"rebalance": "signal", "turnover_cap": 0.2},
    {"rebalance": "drift", "drift_band": 0.03},
    {"rebalance": "daily"},
    {"rebalance": "weekly", "risk": RiskRules(max_asset=0.3, max_gross=1.0)},
    {"rebalance": "signal", "risk": RiskRules(max_asset=0.35, max_gross=1.2, max_net=0.5, max_correlated=0.6,
                                              max_es=0.02, window=48)},
    {"rebalance": "signal", "min_notional": 100.0, "risk": RiskRules(max_drawdown=0.08, resume="candles",
                                                                   resume_after=10, daily_loss=0.03)},
    {"rebalance": "drift", "drift_band": 0.05, "turnover_cap": 0.3, "risk": RiskRules(max_orders=2, max_net=0.6)},
    {"rebalance": "signal", "risk": RiskRules(max_drawdown=0.1, halt_action="freeze", resume="recovery",
                                              resume_drawdown=0.05)},
]


@pytest.mark.parametrize("seed", range(16))
def test_attribution_and_sub_ledgers_add_up_to_the_account(seed):
    cfg = PROPERTY_CONFIGS[seed % len(PROPERTY_CONFIGS)]
    rng = np.random.default_rng(500 + seed)
    candles = _market(rng, SYMBOLS[: 2 + seed % 3], 200, holes=0.05 if seed % 2 else 0.0)
    strategies = ["alpha", "beta", "gamma"][: 1 + seed % 3]
    weights = strategy_weights(rng, candles, strategies, every=0.1, short=seed % 2 == 0)
    got = run_portfolio(candles, weights, init_cash=INIT, **COSTS, **cfg)

    assert got.attribution["net_pnl"].sum() == pytest.approx(got.final_equity - INIT, abs=1e-9 * INIT)
    att = got.attribution
    np.testing.assert_allclose(att["net_pnl"], att["trading_pnl"] - att["fees"] - att["slippage"], atol=1e-9 * INIT)
    assert att["fees"].sum() == pytest.approx(got.trades["fee"].sum(), rel=1e-9, abs=1e-12)
    summed = got.strategy_equity.select(pl.sum_horizontal(strategies)).to_series().to_numpy()
    np.testing.assert_allclose(summed, got.equity["equity"].to_numpy(), rtol=1e-9, atol=1e-9 * INIT)
    if cfg.get("turnover_cap"):
        values = {t: h["_value"] for t, h in held_weights(got, candles).items()}
        for t, mid in _mid_notional_by_candle(got, candles).iter_rows():
            assert mid <= cfg["turnover_cap"] * values[t] + 1e-9, t


@pytest.mark.parametrize("seed", range(3))
def test_one_strategy_split_in_two_identical_halves_gives_the_same_equity(seed):
    rng = np.random.default_rng(900 + seed)
    candles = _market(rng, SYMBOLS[:3], 150, holes=0.08 if seed else 0.0)
    weights = _weights(rng, candles, every=0.15, short=True)
    extra = {"turnover_cap": 0.3} if seed == 2 else {}
    one = run_portfolio(candles, weights, init_cash=INIT, **COSTS, **extra)
    halves = pl.concat([weights.with_columns(strategy=pl.lit(s)) for s in ("left", "right")])
    two = run_portfolio(candles, halves, shares={"left": 0.5, "right": 0.5}, init_cash=INIT, **COSTS, **extra)
    np.testing.assert_allclose(two.equity["equity"].to_numpy(), one.equity["equity"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(two.strategy_equity["left"], two.strategy_equity["right"], rtol=1e-9)
    assert two.trades.height == one.trades.height


def test_two_exactly_opposite_strategies_cross_internally_and_keep_their_own_pnl():
    rng = np.random.default_rng(7)
    candles = _market(rng, ["AAA", "BBB"], 48)
    w = {"AAA": 0.5, "BBB": -0.3}
    rows = [(0, m, x, "long") for m, x in w.items()] + [(0, m, -x, "short") for m, x in w.items()]
    got = run_portfolio(candles, weight_rows(rows), shares={"long": 0.5, "short": 0.5}, init_cash=INIT, **COSTS)

    assert got.trades.height == 0
    assert got.equity["equity"].to_list() == [INIT] * candles["ts"].n_unique()
    att = {(r["strategy"], r["symbol"]): r for r in got.attribution.iter_rows(named=True)}
    assert all(r["fees"] == 0.0 and r["slippage"] == 0.0 for r in att.values())
    for m, x in w.items():
        bars = candles.filter(pl.col("symbol") == m)
        entry, last = bars["open"][1], bars["close"][-1]
        pnl = x * (INIT / 2) / entry * (last - entry)  # units bought at the first open after the row, marked at the last close
        assert att[("long", m)]["net_pnl"] == pytest.approx(pnl, rel=1e-9)
        assert att[("short", m)]["net_pnl"] == pytest.approx(-pnl, rel=1e-9)
    long_eq, short_eq = got.strategy_equity["long"].to_numpy(), got.strategy_equity["short"].to_numpy()
    np.testing.assert_allclose(long_eq + short_eq, INIT, rtol=1e-12)
    assert abs(long_eq[-1] - INIT / 2) > 1.0  # each really made (or lost) money


def test_no_strategy_is_moved_past_its_own_wish_when_the_account_trades_less():
    # long wishes +50 units (1.0 x 5000 / 100), short -10 (-0.2 x 5000 / 100): net +40, but the cap lets 10 trade
    candles = frame({"AAA": [100.0, 110.0, 110.0]})
    rows = [(0, "AAA", 1.0, "long"), (0, "AAA", -0.2, "short")]
    got = run_portfolio(candles, weight_rows(rows), shares={"long": 0.5, "short": 0.5}, init_cash=INIT,
                        turnover_cap=0.1, **NO_COSTS)  # fmt: skip
    # candle 1 opens at 100 and closes at 110, no costs: a sub-ledger's gain on it is its units x 10
    short_units = (got.strategy_equity["short"][1] - INIT / 2) / 10.0
    long_units = (got.strategy_equity["long"][1] - INIT / 2) / 10.0
    assert long_units + short_units == pytest.approx(10.0)
    assert short_units == pytest.approx(-10.0)  # its sell crosses wholly with the long's buy: no more, no less
    assert long_units == pytest.approx(20.0)  # the long strategy alone waits for the rest


def test_a_strategy_whose_wish_crosses_wholly_internally_pays_no_costs():
    # long wishes +30 units, short -10: the account buys 20; the short's 10 cross with the long's buy at the open
    candles = frame({"AAA": [100.0, 100.0, 100.0]})
    rows = [(0, "AAA", 0.6, "long"), (0, "AAA", -0.2, "short")]
    got = run_portfolio(candles, weight_rows(rows), shares={"long": 0.5, "short": 0.5}, init_cash=INIT, **COSTS)
    assert got.trades["qty"].to_list() == pytest.approx([20.0])
    att = {r["strategy"]: r for r in got.attribution.iter_rows(named=True)}
    assert att["long"]["fees"] == pytest.approx(got.trades["fee"].sum())
    assert att["short"]["fees"] == 0.0 and att["short"]["slippage"] == 0.0


# -- 3. calendar rebalancing --------------------------------------------------------------------------------


def test_daily_rebalance_trades_only_at_the_first_open_of_a_day_and_restores_the_latest_targets():
    candles = _market(np.random.default_rng(11), ["AAA", "BBB", "CCC"], 24 * 8)
    rows = [(5, "AAA", 0.3), (5, "BBB", 0.2), (5, "CCC", 0.25), (24 * 2 + 13, "AAA", 0.1), (24 * 5 + 23, "BBB", 0.3)]
    got = run_portfolio(candles, weight_rows(rows), rebalance="daily", init_cash=INIT, **COSTS)

    assert got.trades.height > 0
    assert all(ts.hour == 0 for ts in got.trades["ts"].to_list())
    held = held_weights(got, candles)
    target = {"AAA": 0.3, "BBB": 0.2, "CCC": 0.25}
    for day in range(1, 8):
        t = T0 + timedelta(days=day)
        if day == 3:
            target["AAA"] = 0.1  # the row of day 2, 13:00
        if day == 6:
            target["BBB"] = 0.3  # the row of day 5's last candle
        # every day, with or without a new row: prices drifted the weights and the open puts them back
        assert set(got.trades.filter(pl.col("ts") == t)["symbol"]) == set(target), t
        for m, w in target.items():
            assert held[t][m] == pytest.approx(w, abs=1e-12), (t, m)
    assert len(held) == 7


def test_weekly_rebalance_fills_only_on_mondays_at_midnight():
    candles = _market(np.random.default_rng(12), ["AAA", "BBB"], 24 * 35)  # Thu 2026-01-01 .. Wed 2026-02-04
    rows = [(7, "AAA", 0.4), (7, "BBB", 0.3), (24 * 9 + 3, "AAA", 0.2)]
    got = run_portfolio(candles, weight_rows(rows), rebalance="weekly", init_cash=INIT, **COSTS)
    stamps = sorted(set(got.trades["ts"].to_list()))
    assert [(t.month, t.day) for t in stamps] == [(1, 5), (1, 12), (1, 19), (1, 26), (2, 2)]
    assert all(t.weekday() == 0 and t.hour == 0 and t.minute == 0 for t in stamps)
    assert held_weights(got, candles)[stamps[1]]["AAA"] == pytest.approx(0.2, abs=1e-12)  # Sat 10th's row, at Mon 12th


def test_monthly_rebalance_fills_only_on_the_first_of_a_month():
    candles = _market(np.random.default_rng(13), ["AAA", "BBB"], 24 * 60)  # 2026-01-01 .. 2026-03-01
    rows = [(5, "AAA", 0.4), (5, "BBB", 0.4), (24 * 19, "BBB", 0.1)]
    got = run_portfolio(candles, weight_rows(rows), rebalance="monthly", init_cash=INIT, **COSTS)
    stamps = sorted(set(got.trades["ts"].to_list()))
    assert [(t.month, t.day, t.hour) for t in stamps] == [(2, 1, 0), (3, 1, 0)]
    held = held_weights(got, candles)
    for t in stamps:
        assert held[t]["AAA"] == pytest.approx(0.4, abs=1e-12) and held[t]["BBB"] == pytest.approx(0.1, abs=1e-12)


# -- 4. drift band ------------------------------------------------------------------------------------------


def test_drift_band_trades_only_after_the_first_close_a_weight_strays_past_the_band():
    n = 30
    a = [100.0] * 4 + [101.0, 102.01, 103.0301] + [103.0301] * 3 + [103.0301 * 1.3] * (n - 10)  # jumps at candle 10
    b = [100.0] * n
    candles = frame({"AAA": a, "BBB": b})
    rows = [(0, "AAA", 0.4), (0, "BBB", 0.4), (15, "AAA", 0.42), (20, "AAA", 0.5)]
    got = run_portfolio(candles, weight_rows(rows), rebalance="drift", drift_band=0.05, init_cash=INIT, **COSTS)

    # by hand: 40 units of each at the open of 1 (40 x 100 x 1.0005 x 1.001 each), then weights at each close
    cash = INIT - 2 * 40 * 100 * 1.0005 * 1.001
    strays = [t for t in range(1, n) if max(abs(40 * x / (cash + 40 * a[t] + 40 * b[t]) - 0.4) for x in (a[t], b[t])) > 0.05]
    assert strays[0] == 10
    assert max(abs(40 * x / (cash + 40 * a[9] + 40 * b[9]) - 0.4) for x in (a[9], b[9])) > 0.005  # drifted, inside the band
    stamps = sorted(set(got.trades["ts"].to_list()))
    # the first row, the first stray close (10), nothing for the row of 15 (0.42: inside the band), the row of 20
    assert stamps == [T0 + timedelta(hours=h) for h in (1, 11, 21)]
    assert got.trades.filter(pl.col("ts") == T0 + timedelta(hours=1))["qty"].to_list() == pytest.approx([40.0, 40.0])
    held = held_weights(got, candles)
    assert held[T0 + timedelta(hours=11)]["AAA"] == pytest.approx(0.4, abs=1e-12)
    assert held[T0 + timedelta(hours=21)]["AAA"] == pytest.approx(0.5, abs=1e-12)
    assert got.metrics["n_drift_rebalances"] == 3


# -- 5. turnover cap ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_turnover_cap_bounds_each_candle_and_the_portfolio_still_reaches_its_targets(seed):
    rng = np.random.default_rng(40 + seed)
    candles = _market(rng, ["AAA", "BBB", "CCC"], 40)
    target = {"AAA": 0.5, "BBB": -0.3, "CCC": 0.2}
    cap = 0.15
    got = run_portfolio(candles, weight_rows([(0, m, w) for m, w in target.items()]), turnover_cap=cap,
                        init_cash=INIT, **COSTS)  # fmt: skip
    held = held_weights(got, candles)
    mids = dict(_mid_notional_by_candle(got, candles).iter_rows())
    stamps = sorted(held)
    assert stamps == [T0 + timedelta(hours=h) for h in range(1, len(stamps) + 1)]  # one candle after another
    assert len(stamps) >= 7  # 1.0 of turnover at 0.15 a candle
    for t in stamps:
        assert mids[t] <= cap * held[t]["_value"] + 1e-9, t
    for t in stamps[:-1]:
        assert mids[t] == pytest.approx(cap * held[t]["_value"], rel=1e-9)  # capped candles trade exactly the cap
    for m, w in target.items():
        assert held[stamps[-1]][m] == pytest.approx(w, abs=1e-12)  # the last step reaches the targets
    assert got.metrics["n_turnover_capped"] == len(stamps) - 1


# -- 6. bad settings ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    candles = frame({"AAA": [100.0, 101.0, 102.0], "BBB": [50.0, 51.0, 52.0]})
    return candles, weight_rows([(0, "AAA", 0.5, "x"), (0, "BBB", 0.3, "y")])


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"rebalance": "hourly"}, "hourly"),
    ({"shares": {"x": 0.6, "y": 0.6}}, r"0\.6"),
    ({"shares": {"x": 0.5, "zzz_typo": 0.5}}, r"\['y'\]"),
    ({"shares": {"x": 1.0}}, r"\['y'\]"),
    ({"shares": {"x": 1.5, "y": -0.5}}, r"-0\.5"),
    ({"rebalance": "drift", "drift_band": 0.0}, "drift_band.*0"),
    ({"rebalance": "drift", "drift_band": -0.02}, r"drift_band.*-0\.02"),
    ({"turnover_cap": 0.0}, "turnover_cap"),
    ({"turnover_cap": float("nan")}, "turnover_cap.*nan"),
])  # fmt: skip
def test_bad_settings_raise_configuration_error_naming_the_value(small, kwargs, named):
    candles, weights = small
    with pytest.raises(ConfigurationError, match=named):
        run_portfolio(candles, weights, **kwargs)


def test_a_share_for_a_strategy_without_weights_stays_cash(small):
    candles, weights = small
    got = run_portfolio(candles, weights, shares={"x": 0.4, "y": 0.3, "idle": 0.3}, init_cash=INIT, **NO_COSTS)
    assert got.strategy_equity["idle"].to_list() == [0.3 * INIT] * 3
    assert got.attribution.filter(pl.col("strategy") == "idle")["net_pnl"].to_list() == [0.0, 0.0]
    # x holds 0.5 of its 4000 in AAA: 20 units bought at 100 (the open of 1), marked at 101 and 102
    assert got.strategy_equity["x"].to_list() == pytest.approx([4000.0, 4020.0, 4040.0])


def test_duplicate_weights_of_one_strategy_are_refused_but_two_strategies_may_share_a_market(small):
    candles, _ = small
    dup = weight_rows([(0, "AAA", 0.5, "x"), (0, "AAA", 0.2, "x"), (0, "AAA", 0.1, "y")])
    with pytest.raises(DataError, match="duplicate"):
        run_portfolio(candles, dup)
    shared = weight_rows([(0, "AAA", 0.5, "x"), (0, "AAA", 0.2, "y")])
    assert run_portfolio(candles, shared).trades.height == 1


def test_real_kraken_candles_two_strategies_match_the_reference_and_attribution_sums():
    """Three real BTC markets (kraken, 1h, Q1 2023), a momentum and a mean-reversion book on one account."""
    from conftest import load_real_candles

    frames = [load_real_candles("kraken", m, "1h").with_columns(symbol=pl.lit(m.replace("_", "/"))) for m in ("BTC_USD", "BTC_USDT", "BTC_USDC")]
    candles = pl.concat(frames).select("ts", "symbol", "open", "high", "low", "close", "volume")
    ret = pl.col("close") / pl.col("close").shift(24).over("symbol") - 1.0
    daily = candles.with_columns(r=ret).filter((pl.col("ts").dt.hour() == 23) & pl.col("r").is_not_null())
    weights = pl.concat([
        daily.select("ts", "symbol", strategy=pl.lit("momentum"), weight=pl.when(pl.col("r") > 0).then(0.3).otherwise(0.0)),
        daily.select("ts", "symbol", strategy=pl.lit("reversion"), weight=pl.when(pl.col("r") < 0).then(0.3).otherwise(-0.1)),
    ])  # fmt: skip
    shares = {"momentum": 0.7, "reversion": 0.3}
    got = run_portfolio(candles, weights, shares=shares, init_cash=INIT, **COSTS)
    want = reference_portfolio(candles, weights, shares=shares, init_cash=INIT, **COSTS)
    np.testing.assert_allclose(got.equity["equity"].to_numpy(), want.curve, rtol=1e-9)
    assert got.trades.height == len(want.fills) > 100
    assert float(got.attribution["net_pnl"].sum()) == pytest.approx(got.final_equity - INIT, abs=1e-9 * INIT)
    assert got.metrics["fees_paid"] > 0 and got.metrics["n_trades"] == got.trades.height

"""Risk rules of the portfolio engine: the state machine's trips and resumes, the caps on targets, the order
cap, and the numba functions themselves — every expected number computed by hand or in plain Python."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from quantdag.errors import ConfigurationError
from quantdag.portfolio import risk as rk
from quantdag.portfolio import run_portfolio
from quantdag.portfolio.risk import RiskRules
from tests.quantdag.portfolio.reference import (
    T0,
    _market,
    expected_shortfall,
    frame,
    held_weights,
    trailing_returns,
    weight_rows,
)

INIT = 10_000.0
FEE, SLIP = 0.001, 0.0005
COSTS = {"fee": FEE, "slippage": SLIP}
NO_COSTS = {"fee": 0.0, "slippage": 0.0}
T0_MS = int(T0.timestamp() * 1000)
HOUR_MS = 3_600_000


def at(hour):
    return T0 + timedelta(hours=hour)


def events(result):
    return [(r["ts"], r["state"], r["rule"]) for r in result.risk_events.iter_rows(named=True)]


def fill_stamps(result):
    return sorted(set(result.trades["ts"].to_list()))


def _all_in(closes):
    """By hand: weight 1.0 decided at candle 0's close, filled at candle 1's open (the first close). The buy
    is cut to what cash pays, so units = cash / (open x (1 + slippage) x (1 + fee)) and no cash is left."""
    units = INIT / (closes[0] * (1 + SLIP) * (1 + FEE))
    cash = INIT - units * closes[0] * (1 + SLIP) * (1 + FEE)
    return units, [INIT] + [cash + units * c for c in closes[1:]]


# -- the drawdown halt (the acceptance case) ----------------------------------------------------------


def test_drawdown_halt_trips_at_the_first_close_20pct_under_the_peak_flattens_and_stays_flat():
    closes = [100.0 * 0.31 ** (t / 39) for t in range(40)]  # 100 -> 31 steadily over 40 hourly candles
    rows = [(0, "AAA", 1.0), (25, "AAA", 0.5), (33, "AAA", 1.0)]  # new rows while halted must not reopen anything
    got = run_portfolio(frame({"AAA": closes}), weight_rows(rows), risk=RiskRules(max_drawdown=0.2), init_cash=INIT,
                        **COSTS)  # fmt: skip

    units, curve = _all_in(closes)
    peak = np.maximum.accumulate(curve)
    trip = next(t for t in range(40) if (peak[t] - curve[t]) / peak[t] >= 0.2)
    assert (peak[trip - 1] - curve[trip - 1]) / peak[trip - 1] < 0.2
    np.testing.assert_allclose(got.equity["equity"][: trip + 1], curve[: trip + 1], rtol=1e-9)
    assert events(got) == [(at(trip), "halted", "max_drawdown")]
    assert got.metrics["n_risk_events"] == 1
    # flattened at the next open, at the slipped open price, and nothing traded after
    assert got.trades.height == 2
    sell = got.trades.row(1, named=True)
    assert sell["ts"] == at(trip + 1) and sell["qty"] == pytest.approx(-units, rel=1e-12)
    assert sell["price"] == pytest.approx(closes[trip] * (1 - SLIP), rel=1e-12)
    assert got.positions["units"].to_list() == [0.0]
    flat = got.equity["equity"][trip + 1 :].to_numpy()
    assert np.all(flat == flat[0])
    assert flat[0] == pytest.approx(units * closes[trip] * (1 - SLIP) * (1 - FEE), rel=1e-9)
    assert got.final_equity > 0.75 * INIT  # the rule kept most of what a 69 % fall would have taken


FLATTEN_CLOSES = {"AAA": [100.0 * 0.97**t for t in range(30)], "BBB": [100.0] * 30, "CCC": [50.0] * 30}
FLATTEN_ROWS = weight_rows([(0, m, 0.3) for m in FLATTEN_CLOSES])


def test_a_halt_flattens_every_market_at_the_next_open():
    got = run_portfolio(frame(FLATTEN_CLOSES), FLATTEN_ROWS, risk=RiskRules(max_drawdown=0.05), init_cash=INIT, **COSTS)
    ((trip, state, _),) = events(got)
    assert state == "halted"
    assert fill_stamps(got) == [at(1), trip + timedelta(hours=1)]
    assert got.positions["units"].to_list() == [0.0, 0.0, 0.0]


def _flatten_case(kind):
    closes, extra = dict(FLATTEN_CLOSES), {}
    rules = RiskRules(max_drawdown=0.05, max_orders=1 if kind == "max_orders" else None)
    if kind == "hole":  # BBB has no candle at the open after the halt
        base = run_portfolio(frame(closes), FLATTEN_ROWS, risk=rules, init_cash=INIT, **COSTS)
        flatten_at = int((base.risk_events["ts"][0] - T0) / timedelta(hours=1)) + 1
        closes["BBB"] = [None if t == flatten_at else c for t, c in enumerate(closes["BBB"])]
    elif kind == "turnover_cap":
        extra["turnover_cap"] = 0.1
    return run_portfolio(frame(closes), FLATTEN_ROWS, risk=rules, init_cash=INIT, **COSTS, **extra)


@pytest.mark.parametrize("kind", [
    "hole",
    "turnover_cap",
    "max_orders",
])  # fmt: skip
def test_a_halt_flattens_every_position_even_when_one_open_cannot_do_it_all(kind):
    got = _flatten_case(kind)
    assert [e[1] for e in events(got)] == ["halted"]
    assert got.positions["units"].to_list() == [0.0, 0.0, 0.0]


# -- daily loss: reducing until the next UTC day --------------------------------------------------------------


DAILY_CLOSES = [100.0] * 4 + [100.0 * 0.98**k for k in range(1, 7)] + [100.0 * 0.98**6] * 38  # 48 candles, 2 days


def _daily_trip():
    """By hand: 60 units bought at 100.05 (+ fee) at the open of 1; the first close 5 % under the day's start."""
    cash = INIT - 60 * 100 * (1 + SLIP) * (1 + FEE)
    return next(t for t in range(48) if (INIT - (cash + 60 * DAILY_CLOSES[t])) / INIT >= 0.05)


def test_daily_loss_reduces_only_until_the_next_utc_day_then_restores_the_targets():
    trip = _daily_trip()
    rows = [(0, "AAA", 0.6), (trip + 2, "AAA", 0.9), (trip + 5, "AAA", 0.3), (trip + 8, "AAA", 0.8)]
    candles = frame({"AAA": DAILY_CLOSES})
    got = run_portfolio(candles, weight_rows(rows), risk=RiskRules(daily_loss=0.05), init_cash=INIT, **COSTS)
    assert events(got) == [(at(trip), "reducing", "daily_loss"), (at(24), "active", "daily_loss")]
    assert got.risk_events["reason"][1] == "a new UTC day began"
    # 0.9 (more than held) buys nothing; 0.3 sells down to 0.3; 0.8 waits for the new day's first close
    real = got.trades.filter(pl.col("notional") > 1e-6)  # (no float-dust fill: pinned below)
    assert sorted(set(real["ts"])) == [at(1), at(trip + 6), at(25)]
    units = np.cumsum(got.trades["qty"].to_numpy())
    during = (got.trades["ts"] > at(trip)) & (got.trades["ts"] < at(trip + 6))
    assert np.all(units[during.to_numpy()] <= 60.0 * (1 + 1e-12))  # never meaningfully more than before the trip
    held = held_weights(got, candles)
    assert real.filter(pl.col("ts") == at(trip + 6))["qty"][0] < 0
    assert held[at(trip + 6)]["AAA"] == pytest.approx(0.3, abs=1e-12)
    assert held[at(25)]["AAA"] == pytest.approx(0.8, abs=1e-12)


def test_while_reducing_a_target_above_the_held_weight_makes_no_fill_at_all():
    trip = _daily_trip()
    got = run_portfolio(frame({"AAA": DAILY_CLOSES}), weight_rows([(0, "AAA", 0.6)]), risk=RiskRules(daily_loss=0.05),
                        init_cash=INIT, **COSTS)  # fmt: skip
    # the trip re-pends the latest target (0.6, above the held ~0.57): reducing may not buy any of it
    assert at(trip + 1) not in fill_stamps(got)
    assert fill_stamps(got) == [at(1), at(25)]


def test_daily_loss_counts_the_loss_of_the_first_candle_of_the_day():
    closes = [100.0] * 24 + [97.0, 97.0 * 0.975] + [97.0 * 0.975] * 10
    got = run_portfolio(frame({"AAA": closes}), weight_rows([(0, "AAA", 1.0)]), risk=RiskRules(daily_loss=0.05),
                        init_cash=INIT, **NO_COSTS)  # fmt: skip
    assert got.equity["equity"][23:26].to_list() == pytest.approx([10_000.0, 9_700.0, 9_457.5])
    assert events(got) == [(at(25), "reducing", "daily_loss")]


def test_reducing_never_grows_a_position_on_random_paths():
    """While reducing, every fill shrinks |units| (no float dust: pinned above) and never flips a sign."""
    reduced = 0
    for seed in range(4):
        rng = np.random.default_rng(70 + seed)
        candles = _market(rng, ["AAA", "BBB", "CCC"], 72)
        pick = candles.filter(pl.Series(rng.random(candles.height) < 0.25))
        weights = pick.select("ts", "symbol").with_columns(weight=pl.Series(rng.uniform(-0.5, 0.5, pick.height)))
        got = run_portfolio(candles, weights, risk=RiskRules(daily_loss=0.01), init_cash=INIT, **COSTS)
        state, since = "active", {}
        for r in got.risk_events.iter_rows(named=True):
            since[r["ts"] + timedelta(hours=1)] = r["state"]  # the state an open trades under: the last close's
        units = dict.fromkeys(["AAA", "BBB", "CCC"], 0.0)
        fills = {}
        for r in got.trades.iter_rows(named=True):
            fills.setdefault(r["ts"], []).append((r["symbol"], r["qty"]))
        for t in got.equity["ts"].to_list():
            state = since.get(t, state)
            for m, q in fills.get(t, []):
                if state == "reducing":
                    reduced += 1
                    assert abs(units[m] + q) <= abs(units[m]) * (1 + 1e-12), (seed, t, m)
                    assert (units[m] + q) * units[m] >= 0, (seed, t, m)
                units[m] += q
        assert "reducing" in got.risk_events["state"].to_list()
    assert reduced > 10


# -- resume policies ------------------------------------------------------------------------------------------


def test_resume_after_candles_reenters_and_rearms_the_peak():
    closes = [100.0] + [100.0 * 0.97**k for k in range(1, 9)] + [100.0 * 0.97**8] * 31  # falls, then flat
    rules = RiskRules(max_drawdown=0.15, resume="candles", resume_after=5)
    got = run_portfolio(frame({"AAA": closes}), weight_rows([(0, "AAA", 1.0)]), risk=rules, init_cash=INIT, **COSTS)
    _, curve = _all_in(closes)
    peak = np.maximum.accumulate(curve)
    trip = next(t for t in range(40) if (peak[t] - curve[t]) / peak[t] >= 0.15)
    # flat prices after the re-entry would still be >= 15 % under the old peak: only a re-armed peak stays active
    assert events(got) == [(at(trip), "halted", "max_drawdown"), (at(trip + 5), "active", "resume_after_candles")]
    assert fill_stamps(got) == [at(1), at(trip + 1), at(trip + 6)]
    assert got.trades["qty"].to_list()[1] < 0 < got.trades["qty"].to_list()[2]
    assert got.positions["units"][0] > 0


def test_resume_on_recovery_keeps_frozen_positions_until_the_drawdown_heals():
    closes = [100.0, 100.0, 92.0, 85.0, 78.0, 72.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 97.0, 99.0, 100.0] + [100.0] * 5
    rules = RiskRules(max_drawdown=0.2, halt_action="freeze", resume="recovery", resume_drawdown=0.05)
    rows = [(0, "AAA", 0.9), (7, "AAA", 0.2)]  # the 0.2 row comes while halted: kept for after the resume
    got = run_portfolio(frame({"AAA": closes}), weight_rows(rows), risk=rules, init_cash=INIT, **COSTS)

    units = 0.9 * INIT / 100.0
    cash = INIT - units * 100 * (1 + SLIP) * (1 + FEE)
    curve = [INIT] + [cash + units * c for c in closes[1:]]
    peak = np.maximum.accumulate(curve)
    dd = [(p - e) / p for p, e in zip(peak, curve)]
    trip = next(t for t in range(len(dd)) if dd[t] >= 0.2)
    back = next(t for t in range(trip + 1, len(dd)) if dd[t] <= 0.05)
    assert events(got) == [(at(trip), "halted", "max_drawdown"), (at(back), "active", "resume_on_recovery")]
    assert fill_stamps(got) == [at(1), at(back + 1)]  # frozen in between, whatever rows came
    np.testing.assert_allclose(got.equity["equity"][: back + 1], curve[: back + 1], rtol=1e-9)
    assert held_weights(got, frame({"AAA": closes}))[at(back + 1)]["AAA"] == pytest.approx(0.2, abs=1e-12)


def test_a_frozen_halt_makes_no_fill_whatever_rows_arrive():
    rng = np.random.default_rng(0)
    candles = _market(rng, ["AAA", "BBB", "CCC"], 120)
    pick = candles.filter(pl.Series(rng.random(candles.height) < 0.2))
    weights = pick.select("ts", "symbol").with_columns(weight=pl.Series(rng.uniform(-0.5, 0.5, pick.height)))
    got = run_portfolio(candles, weights, risk=RiskRules(max_drawdown=0.03, halt_action="freeze"), init_cash=INIT,
                        **COSTS)  # fmt: skip
    (halt,) = got.risk_events["ts"]
    assert got.trades.filter(pl.col("ts") > halt).height == 0


def test_resume_on_recovery_needs_frozen_positions():
    with pytest.raises(ConfigurationError, match="freeze"):
        RiskRules(max_drawdown=0.2, resume="recovery", resume_drawdown=0.05)


# -- caps on targets ------------------------------------------------------------------------------------------


def _capped(rules, targets, candles=None, at_row=30):
    """One weight row at ``at_row``; the held weights right after its fill (and the result)."""
    candles = _market(np.random.default_rng(5), sorted(targets), 40) if candles is None else candles
    rows = [(at_row, m, w) for m, w in targets.items()]
    got = run_portfolio(candles, weight_rows(rows), risk=rules, init_cash=INIT, **COSTS)
    assert fill_stamps(got) == [at(at_row + 1)]
    held = held_weights(got, candles)[at(at_row + 1)]
    return got, {m: held[m] for m in targets}


@pytest.mark.parametrize(("rules", "targets", "want"), [
    (RiskRules(max_asset=0.3), {"AAA": 0.5, "BBB": 0.2, "CCC": -0.45}, {"AAA": 0.3, "BBB": 0.2, "CCC": -0.3}),
    (RiskRules(max_gross=1.0), {"AAA": 0.6, "BBB": -0.6, "CCC": 0.3}, {"AAA": 0.4, "BBB": -0.4, "CCC": 0.2}),
    (RiskRules(max_net=0.4), {"AAA": 0.6, "BBB": 0.3, "CCC": -0.2}, {"AAA": 0.4, "BBB": 0.2, "CCC": -0.2}),
    (RiskRules(max_net=0.4), {"AAA": -0.6, "BBB": -0.3, "CCC": 0.2}, {"AAA": -0.4, "BBB": -0.2, "CCC": 0.2}),
    (RiskRules(max_asset=0.5, max_gross=2.0, max_net=1.0), {"AAA": 0.4, "BBB": -0.3, "CCC": 0.1},
     {"AAA": 0.4, "BBB": -0.3, "CCC": 0.1}),
], ids=["max_asset", "max_gross", "max_net_long", "max_net_short", "none_binding"])  # fmt: skip
def test_caps_shrink_the_held_weights_right_after_the_fill(rules, targets, want):
    got, held = _capped(rules, targets)
    for m, w in want.items():
        assert held[m] == pytest.approx(w, abs=1e-12), m
    assert got.metrics["n_risk_limited"] == (0 if want == targets else 1)


def test_correlated_cap_shares_its_limit_between_markets_that_move_together():
    rng = np.random.default_rng(8)
    walk = list(100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, 40))))
    other = list(50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, 40))))
    closes = {"AAA": walk, "BBB": [2.0 * c for c in walk], "CCC": other}  # AAA, BBB: identical returns, corr 1
    rets = trailing_returns(frame(closes), ["AAA", "BBB", "CCC"], 30, 720)
    assert abs(np.corrcoef(np.array(rets).T)[0, 2]) < 0.5
    got, held = _capped(RiskRules(max_correlated=0.5), {"AAA": 0.4, "BBB": 0.4, "CCC": 0.4}, frame(closes))
    assert held == pytest.approx({"AAA": 0.25, "BBB": 0.25, "CCC": 0.4}, abs=1e-9)
    assert got.metrics["n_risk_limited"] == 1


def test_expected_shortfall_cap_scales_the_portfolio_to_exactly_the_limit():
    candles = _market(np.random.default_rng(9), ["AAA", "BBB"], 90)
    targets = {"AAA": 0.5, "BBB": 0.4}
    rets = trailing_returns(candles, ["AAA", "BBB"], 80, 50)  # the 50 returns up to the close the row was decided at
    assert len(rets) == 50
    es_target = expected_shortfall(rets, [0.5, 0.4], 0.95)
    cap = es_target / 2
    got, held = _capped(RiskRules(max_es=cap, window=50, es_level=0.95), targets, candles, at_row=80)
    assert expected_shortfall(rets, [held["AAA"], held["BBB"]], 0.95) == pytest.approx(cap, rel=1e-9)
    assert held["AAA"] / held["BBB"] == pytest.approx(0.5 / 0.4, rel=1e-9)  # scaled, not reshaped
    assert got.metrics["n_risk_limited"] == 1


def test_risk_limited_counts_each_rebalance_a_cap_changed():
    candles = _market(np.random.default_rng(10), ["AAA", "BBB"], 30)
    rows = [(2, "AAA", 0.5), (2, "BBB", 0.1), (8, "AAA", 0.2), (14, "BBB", 0.6), (20, "AAA", 0.25), (20, "BBB", 0.1)]
    got = run_portfolio(candles, weight_rows(rows), risk=RiskRules(max_asset=0.3), init_cash=INIT, **COSTS)
    assert fill_stamps(got) == [at(3), at(9), at(15), at(21)]
    assert got.metrics["n_risk_limited"] == 2  # the rows of 2 (AAA 0.5) and 14 (BBB 0.6)


def test_a_target_already_met_leaves_nothing_pending_so_caps_act_only_at_rebalances():
    """A zero weight for a market never held wishes exactly nothing; it must not keep the next candles rebalancing
    (which would re-apply the caps to the rising AAA every candle)."""
    n = 30
    closes = {"AAA": [100.0 * 1.01**t for t in range(n)], "BBB": [100.0] * n}
    got = run_portfolio(frame(closes), weight_rows([(0, "AAA", 0.5), (0, "BBB", 0.0)]),
                        risk=RiskRules(max_asset=0.3), init_cash=INIT, **COSTS)  # fmt: skip
    assert got.trades.height == 1 and got.metrics["n_risk_limited"] == 1


# -- order cap ------------------------------------------------------------------------------------------------


def test_max_orders_fills_the_largest_orders_first_and_defers_the_rest_to_the_next_candles():
    symbols = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    closes = {m: [100.0] * 8 for m in symbols}
    targets = dict(zip(symbols, [0.18, 0.10, 0.16, 0.12, 0.14]))
    got = run_portfolio(frame(closes), weight_rows([(0, m, w) for m, w in targets.items()]),
                        risk=RiskRules(max_orders=2), init_cash=INIT, **COSTS)  # fmt: skip
    per_candle = {t: sorted(g["symbol"].to_list()) for (t,), g in got.trades.group_by("ts")}
    assert per_candle == {at(1): ["AAA", "CCC"], at(2): ["DDD", "EEE"], at(3): ["BBB"]}
    assert got.metrics["n_deferred_orders"] == 3 + 1
    held = held_weights(got, frame(closes))
    for t, ms in per_candle.items():
        for m in ms:
            assert held[t][m] == pytest.approx(targets[m], abs=1e-12)


# -- the numba functions, called directly -----------------------------------------------------------------


def test_update_state_trips_the_drawdown_at_exactly_the_limit_and_holds_the_halt():
    p = RiskRules(max_drawdown=0.2).params()
    st = rk.new_state(INIT, T0_MS)
    assert rk.update_state(st, p, 10_500.0, T0_MS) == (0, 0) and st[rk.S_PEAK] == 10_500.0
    assert rk.update_state(st, p, 8_400.5, T0_MS + HOUR_MS) == (0, 0)  # 19.995 %
    assert rk.update_state(st, p, 8_400.0, T0_MS + 2 * HOUR_MS) == (0, rk.EV_DRAWDOWN)  # 20 % exactly
    assert st[rk.S_STATE] == rk.HALTED
    for k in range(3, 60):  # manual: nothing lets go, not even a full recovery
        assert rk.update_state(st, p, 11_000.0, T0_MS + k * HOUR_MS) == (0, 0)
    assert st[rk.S_STATE] == rk.HALTED


def test_update_state_daily_loss_reduces_until_the_next_utc_day():
    p = RiskRules(daily_loss=0.05).params()
    st = rk.new_state(INIT, T0_MS)
    assert rk.update_state(st, p, 9_600.0, T0_MS + 5 * HOUR_MS) == (0, 0)
    assert rk.update_state(st, p, 9_500.0, T0_MS + 6 * HOUR_MS) == (0, rk.EV_DAILY_LOSS)
    assert st[rk.S_STATE] == rk.REDUCING
    assert rk.update_state(st, p, 9_000.0, T0_MS + 23 * HOUR_MS) == (0, 0)  # no second trip, no escalation
    assert rk.update_state(st, p, 9_000.0, T0_MS + 24 * HOUR_MS) == (rk.EV_NEW_DAY, 0)
    assert st[rk.S_STATE] == rk.ACTIVE and st[rk.S_DAY_START] == 9_000.0


def test_update_state_resume_policies():
    p = RiskRules(max_drawdown=0.1, resume="candles", resume_after=3).params()
    st = rk.new_state(INIT, T0_MS)
    assert rk.update_state(st, p, 8_900.0, T0_MS) == (0, rk.EV_DRAWDOWN)
    assert [rk.update_state(st, p, 8_900.0, T0_MS + k * HOUR_MS) for k in (1, 2, 3)] == [(0, 0), (0, 0),
                                                                                         (0, rk.EV_RESUME_CANDLES)]
    assert st[rk.S_STATE] == rk.ACTIVE and st[rk.S_PEAK] == 8_900.0  # re-armed
    assert rk.update_state(st, p, 8_100.0, T0_MS + 4 * HOUR_MS) == (0, 0)  # 8.99 % under the new peak
    p = RiskRules(max_drawdown=0.1, resume="recovery", resume_drawdown=0.02, halt_action="freeze").params()
    st = rk.new_state(INIT, T0_MS)
    assert rk.update_state(st, p, 9_000.0, T0_MS) == (0, rk.EV_DRAWDOWN)
    assert rk.update_state(st, p, 9_700.0, T0_MS + HOUR_MS) == (0, 0)  # 3 % under the peak
    assert rk.update_state(st, p, 9_800.0, T0_MS + 2 * HOUR_MS) == (0, rk.EV_RESUME_RECOVERY)
    assert st[rk.S_STATE] == rk.ACTIVE


NO_RETURNS = np.empty((0, 4))


def test_limit_weights_halted_flatten_zeroes_tradable_markets_and_freeze_keeps_them():
    target = np.array([0.5, -0.3, 0.2, 0.4])
    current = np.array([0.1, -0.2, 0.3, 0.25])
    tradable = np.array([True, True, False, True])
    w, hits = rk.limit_weights(target, current, tradable, rk.HALTED, RiskRules(max_drawdown=0.1).params(), NO_RETURNS)
    assert w.tolist() == [0.0, 0.0, 0.3, 0.0] and hits == 0  # a market without a candle keeps what it holds
    freeze = RiskRules(max_drawdown=0.1, halt_action="freeze").params()
    w, hits = rk.limit_weights(target, current, tradable, rk.HALTED, freeze, NO_RETURNS)
    assert w.tolist() == current.tolist() and hits == 0


def test_limit_weights_reducing_never_grows_nor_flips_a_weight():
    rng = np.random.default_rng(3)
    returns = rng.normal(0, 0.02, (60, 4))
    for k in range(300):
        rules = [RiskRules(), RiskRules(max_asset=0.3, max_gross=1.0, max_net=0.3),
                 RiskRules(max_correlated=0.4, corr_threshold=-1.0, max_es=0.01)][k % 3]  # fmt: skip
        target = rng.uniform(-1, 1, 4) * (rng.random(4) < 0.8)
        current = rng.uniform(-1, 1, 4) * (rng.random(4) < 0.7)
        tradable = rng.random(4) < 0.85
        w, _ = rk.limit_weights(target, current, tradable, rk.REDUCING, rules.params(), returns)
        for i in range(4):
            if tradable[i]:
                assert abs(w[i]) <= abs(current[i]) + 1e-15 and w[i] * current[i] >= 0, (k, i)
                assert abs(w[i]) <= abs(target[i]) + 1e-15 or target[i] * current[i] <= 0, (k, i)
            else:
                assert w[i] == current[i]


def test_limit_weights_active_caps_only_shrink_toward_zero():
    rng = np.random.default_rng(4)
    returns = rng.normal(0, 0.02, (60, 4))
    returns[:, 1] = returns[:, 0] * 1.5  # two markets perfectly correlated
    rules = RiskRules(max_asset=0.35, max_gross=1.1, max_net=0.4, max_correlated=0.5, max_es=0.02)
    for _ in range(300):
        target = rng.uniform(-0.8, 0.8, 4)
        current = rng.uniform(-0.5, 0.5, 4)
        tradable = np.ones(4, dtype=bool)
        w, _ = rk.limit_weights(target, current, tradable, rk.ACTIVE, rules.params(), returns)
        assert np.all(np.abs(w) <= np.abs(target) + 1e-15) and np.all(w * target >= 0)
        assert np.abs(w).max() <= 0.35 + 1e-12 and np.abs(w).sum() <= 1.1 + 1e-12
        assert abs(w.sum()) <= 0.4 + 1e-12
        assert rk.expected_shortfall(returns, w, 0.95) <= 0.02 + 1e-12


def test_expected_shortfall_is_the_mean_of_the_worst_tail():
    rng = np.random.default_rng(6)
    returns = rng.normal(0, 0.02, (40, 3))
    w = np.array([0.5, -0.2, 0.4])
    assert rk.expected_shortfall(returns, w, 0.95) == pytest.approx(
        expected_shortfall(returns.tolist(), w.tolist(), 0.95), rel=1e-12)  # the worst 2 of 40


def test_expected_shortfall_tail_holds_the_whole_share_at_round_levels():
    returns = -np.arange(1, 101, dtype=float)[:, None] / 1000  # -0.001 .. -0.100
    assert rk.expected_shortfall(returns, np.array([1.0]), 0.9) == pytest.approx(0.0955, rel=1e-12)


# -- validation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"max_gross": 0.0}, "max_gross.*0"),
    ({"max_net": -0.5}, r"max_net.*-0\.5"),
    ({"max_asset": float("inf")}, "max_asset.*inf"),
    ({"max_correlated": float("nan")}, "max_correlated.*nan"),
    ({"max_es": -0.01}, r"max_es.*-0\.01"),
    ({"max_drawdown": 1.0}, r"max_drawdown.*1\.0"),
    ({"max_drawdown": 0.0}, "max_drawdown.*0"),
    ({"daily_loss": 1.5}, r"daily_loss.*1\.5"),
    ({"corr_threshold": 1.2}, r"corr_threshold.*1\.2"),
    ({"es_level": 0.4}, r"es_level.*0\.4"),
    ({"es_level": 1.0}, r"es_level.*1\.0"),
    ({"window": 1}, "window.*1"),
    ({"max_orders": 0}, "max_orders.*0"),
    ({"resume": "never"}, "never"),
    ({"halt_action": "sell_half"}, "sell_half"),
    ({"resume_after": 0}, "resume_after.*0"),
    ({"max_drawdown": 0.2, "halt_action": "freeze", "resume": "recovery", "resume_drawdown": 0.3},
     r"resume_drawdown.*0\.3"),
    ({"halt_action": "freeze", "resume": "recovery"}, "resume_drawdown"),
])  # fmt: skip
def test_risk_rules_refuse_out_of_range_values_naming_them(kwargs, named):
    with pytest.raises(ConfigurationError, match=named):
        RiskRules(**kwargs)


def test_risk_rules_params_turn_unset_rules_off():
    p = RiskRules(max_asset=0.3, max_orders=4).params()
    assert p[rk.P_MAX_ASSET] == 0.3 and p[rk.P_MAX_ORDERS] == 4.0
    assert all(math.isnan(p[i]) for i in (rk.P_MAX_GROSS, rk.P_MAX_NET, rk.P_MAX_CORRELATED, rk.P_MAX_DRAWDOWN,
                                          rk.P_DAILY_LOSS, rk.P_MAX_ES))  # fmt: skip

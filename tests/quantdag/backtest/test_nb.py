"""The numba kernel against the plain-Python reference, on random markets with every setting on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit, prange

from quantdag.backtest import enums, nb

from . import reference as ref


def random_market(seed: int, n: int, gap_prob: float) -> tuple[np.ndarray, ...]:
    """OHLCV with occasional opening gaps (so stops gap through) and some zero-volume candles."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    gaps = np.where(rng.random(n) < gap_prob, rng.normal(0.0, 0.06, n), rng.normal(0.0, 0.002, n))
    open_ = np.r_[100.0, close[:-1]] * np.exp(gaps)
    high = np.maximum(open_, close) * (1.0 + rng.exponential(0.01, n))
    low = np.minimum(open_, close) * (1.0 - np.minimum(rng.exponential(0.01, n), 0.5))
    volume = np.where(rng.random(n) < 0.1, 0.0, rng.exponential(300.0, n))
    return open_, high, low, close, volume


def account(marks: np.ndarray, stats: np.ndarray, close: np.ndarray, init_cash: float) -> tuple[np.ndarray, ...]:
    """Per-bar equity, cash and position from the kernel's marks."""
    n = close.shape[0]
    eq, ca, po = np.empty(n), np.empty(n), np.empty(n)
    nb.expand_marks_nb(marks, int(stats[enums.S_N_MARKS]), close, init_cash, eq, ca, po)
    return eq, ca, po


def run_both(market, signals, target, size, slip, **kw):
    o, h, lo, c, v = market
    n = c.shape[0]
    le, lx, se, sx = signals
    marks = np.empty((n, enums.N_MARK_FIELDS))
    trades = np.empty((n, enums.N_TRADE_FIELDS))
    stats = np.zeros(enums.N_STATS)
    final = nb.simulate_nb(
        o,
        h,
        lo,
        c,
        v,
        le,
        lx,
        se,
        sx,
        target,
        size,
        slip,
        kw["mode"],
        kw["fill_code"],
        kw["size_type"],
        kw["init_cash"],
        kw["fee"],
        kw["sl"],
        kw["tp"],
        kw["tsl"],
        kw["max_leverage"],
        kw["max_volume_share"],
        kw["slip_vol_factor"],
        marks,
        trades,
        stats,
    )
    eq, ca, po = account(marks, stats, c, kw["init_cash"])
    expected = ref.simulate(o, h, lo, c, v, le, lx, se, sx, target, size, slip, **kw)
    got = {
        "equity": eq,
        "cash": ca,
        "position": po,
        "trades": trades[: int(stats[enums.S_N_TRADES])],
        "final_equity": final,
        "fees": stats[enums.S_FEES],
        "slippage": stats[enums.S_SLIPPAGE],
        "traded": stats[enums.S_TRADED_VALUE],
        "n_fills": stats[enums.S_N_FILLS],
        "rejected_size_zero": stats[enums.S_REJ_SIZE],
        "rejected_no_cash": stats[enums.S_REJ_CASH],
        "rejected_volume_cap": stats[enums.S_REJ_VOLUME],
        "capped_fills": stats[enums.S_CAPPED],
    }
    return got, expected


def assert_same(got: dict, expected: dict) -> None:
    assert got["trades"].shape == expected["trades"].shape
    # integer-valued columns (bars, side, reason, open flag) must match exactly
    for col in (enums.T_ENTRY_IDX, enums.T_EXIT_IDX, enums.T_SIDE, enums.T_REASON, enums.T_OPEN):
        np.testing.assert_array_equal(got["trades"][:, col], expected["trades"][:, col])
    np.testing.assert_allclose(got["trades"], expected["trades"], rtol=1e-9, atol=1e-9)
    for key in ("equity", "cash", "position"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-9, atol=1e-9)
    for key in ("final_equity", "fees", "slippage", "traded", "n_fills"):
        assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-9), key
    for key in ("rejected_size_zero", "rejected_no_cash", "rejected_volume_cap", "capped_fills"):
        assert got[key] == expected[key], key


def assert_pnl_adds_up(res: dict, init_cash: float) -> None:
    total = float(res["trades"][:, enums.T_PNL].sum()) if res["trades"].size else 0.0
    assert res["final_equity"] - init_cash == pytest.approx(total, rel=1e-9, abs=1e-7)


common = dict(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 80),
    fill_code=st.sampled_from([enums.FILL_NEXT_OPEN, enums.FILL_CLOSE]),
    fee=st.sampled_from([0.0, 0.001, 0.01]),
    slip_fixed=st.sampled_from([0.0, 0.0005, 0.02]),
    slip_random=st.booleans(),
    sl=st.sampled_from([0.0, 0.01, 0.05]),
    tp=st.sampled_from([0.0, 0.02, 0.1]),
    tsl=st.sampled_from([0.0, 0.01, 0.04]),
    max_volume_share=st.sampled_from([math.inf, 0.5, 0.001]),
    gap_prob=st.sampled_from([0.0, 0.2]),
    slip_vol_factor=st.sampled_from([0.0, 0.1, 3.0]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    direction=st.sampled_from([enums.DIR_LONG, enums.DIR_SHORT, enums.DIR_BOTH]),
    size_type=st.sampled_from([enums.SIZE_PERCENT, enums.SIZE_VALUE, enums.SIZE_UNITS_PER_EQUITY]),
    density=st.sampled_from([0.01, 0.05, 0.3, 0.7]),  # 0.01: long event-free stretches (whole-word skips)
    max_leverage=st.sampled_from([1.0, 2.0]),
    constant_size=st.booleans(),
    **common,
)
def test_simulate_nb_random_signals_every_setting_matches_reference(
    seed,
    n,
    fill_code,
    fee,
    slip_fixed,
    slip_random,
    sl,
    tp,
    tsl,
    max_volume_share,
    gap_prob,
    slip_vol_factor,
    direction,
    size_type,
    density,
    max_leverage,
    constant_size,
):
    market = random_market(seed, n, gap_prob)
    rng = np.random.default_rng(seed + 1)
    sig = [rng.random(n) < density for _ in range(4)]
    if direction == enums.DIR_LONG:
        sig[2][:] = sig[3][:] = False
    elif direction == enums.DIR_SHORT:
        sig[0][:] = sig[1][:] = False
    size = {
        enums.SIZE_PERCENT: rng.uniform(0.1, 1.0, n),
        enums.SIZE_VALUE: rng.uniform(100.0, 20_000.0, n),
        enums.SIZE_UNITS_PER_EQUITY: rng.uniform(1e-4, 2e-2, n),
    }[size_type]
    size[rng.random(n) < 0.1] = np.nan  # warm-up-like holes: no entry there
    if constant_size:
        size = size[np.isfinite(size)][:1] if np.isfinite(size).any() else np.ones(1)  # length 1: every bar
    slip = rng.uniform(0.0, 0.01, n) if slip_random else np.full(1, slip_fixed)
    kw = dict(
        mode=enums.MODE_SIGNALS,
        fill_code=fill_code,
        size_type=size_type,
        init_cash=10_000.0,
        fee=fee,
        sl=sl,
        tp=tp,
        tsl=tsl,
        max_leverage=max_leverage,
        max_volume_share=max_volume_share,
        slip_vol_factor=slip_vol_factor,
    )
    got, expected = run_both(market, sig, np.zeros(0), size, slip, **kw)
    assert_same(got, expected)
    assert_pnl_adds_up(got, 10_000.0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    levels=st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (-1.0, 0.0), (-2.0, 2.0)]),
    nan_share=st.sampled_from([0.0, 0.5, 0.9]),
    **common,
)
def test_simulate_nb_random_targets_every_setting_matches_reference(
    seed,
    n,
    fill_code,
    fee,
    slip_fixed,
    slip_random,
    sl,
    tp,
    tsl,
    max_volume_share,
    gap_prob,
    slip_vol_factor,
    levels,
    nan_share,
):
    market = random_market(seed, n, gap_prob)
    rng = np.random.default_rng(seed + 2)
    target = np.round(rng.uniform(*levels, n) * 4) / 4  # repeats, zeros and sign flips
    target[rng.random(n) < nan_share] = np.nan
    slip = rng.uniform(0.0, 0.01, n) if slip_random else np.full(n, slip_fixed)
    no = np.zeros(0, dtype=np.bool_)
    kw = dict(
        mode=enums.MODE_TARGET,
        fill_code=fill_code,
        size_type=enums.SIZE_PERCENT,
        init_cash=10_000.0,
        fee=fee,
        sl=sl,
        tp=tp,
        tsl=tsl,
        max_leverage=max(abs(levels[0]), abs(levels[1])),
        max_volume_share=max_volume_share,
        slip_vol_factor=slip_vol_factor,
    )
    got, expected = run_both(market, (no, no, no, no), target, np.zeros(0), slip, **kw)
    assert_same(got, expected)
    assert_pnl_adds_up(got, 10_000.0)


def test_simulate_nb_without_recording_gives_same_final_equity():
    market = random_market(3, 500, 0.1)
    rng = np.random.default_rng(4)
    le, lx = rng.random(500) < 0.05, rng.random(500) < 0.05
    z = np.zeros(500, dtype=np.bool_)
    args = (
        *market,
        le,
        lx,
        z,
        z,
        np.zeros(0),
        np.ones(500),
        np.full(500, 0.0005),
        enums.MODE_SIGNALS,
        enums.FILL_NEXT_OPEN,
        enums.SIZE_PERCENT,
        1e4,
        0.001,
        0.02,
        0.05,
        0.03,
        1.0,
        np.inf,
        0.1,
    )
    stats_full, stats_bare = np.zeros(enums.N_STATS), np.zeros(enums.N_STATS)
    full = nb.simulate_nb(*args, np.empty((500, 3)), np.empty((500, 12)), stats_full)
    bare = nb.simulate_nb(*args, np.empty((0, 3)), np.empty((0, 12)), stats_bare)
    assert full == bare  # bit-identical: the sweep kernel may skip recording
    assert stats_bare[enums.S_N_MARKS] == 0 < stats_full[enums.S_N_MARKS]
    stats_full[enums.S_N_MARKS] = 0
    np.testing.assert_array_equal(stats_full, stats_bare)
    assert stats_bare[enums.S_N_TRADES] > 5


@pytest.mark.parametrize(
    ("side", "bar", "levels", "expected"),
    [
        (1.0, (100, 101, 94, 99), (95.0, 110.0, np.nan), (95.0, enums.EXIT_STOP_LOSS)),
        (1.0, (100, 111, 94, 99), (95.0, 110.0, np.nan), (95.0, enums.EXIT_STOP_LOSS)),  # both hit: worse first
        (1.0, (100, 111, 96, 99), (95.0, 110.0, np.nan), (110.0, enums.EXIT_TAKE_PROFIT)),
        (1.0, (90, 91, 85, 88), (95.0, 110.0, np.nan), (90.0, enums.EXIT_STOP_LOSS)),  # gap through: the open
        (1.0, (115, 116, 114, 115), (95.0, 110.0, np.nan), (115.0, enums.EXIT_TAKE_PROFIT)),  # gap over TP
        (1.0, (100, 101, 96, 99), (95.0, np.nan, 97.0), (97.0, enums.EXIT_TRAILING_STOP)),  # tighter trailing
        (1.0, (100, 101, 96, 99), (97.0, np.nan, 97.0), (97.0, enums.EXIT_STOP_LOSS)),  # tie: stop-loss
        (1.0, (100, 101, 99, 100), (95.0, 110.0, 97.0), (np.nan, enums.EXIT_NONE)),
        (-1.0, (100, 106, 99, 101), (105.0, 90.0, np.nan), (105.0, enums.EXIT_STOP_LOSS)),
        (-1.0, (100, 106, 89, 101), (105.0, 90.0, np.nan), (105.0, enums.EXIT_STOP_LOSS)),
        (-1.0, (100, 101, 89, 95), (105.0, 90.0, np.nan), (90.0, enums.EXIT_TAKE_PROFIT)),
        (-1.0, (108, 109, 107, 108), (105.0, 90.0, np.nan), (108.0, enums.EXIT_STOP_LOSS)),
        (-1.0, (100, 104, 99, 101), (105.0, np.nan, 103.0), (103.0, enums.EXIT_TRAILING_STOP)),
    ],
)
def test_stop_exit_nb_hand_cases_match_rule_and_reference(side, bar, levels, expected):
    got = nb.stop_exit_nb(side, *map(float, bar[:3]), *levels)  # open, high, low (close unused)
    assert got[1] == expected[1]
    assert (math.isnan(got[0]) and math.isnan(expected[0])) or got[0] == expected[0]
    assert ref.stop_exit(side, *map(float, bar[:3]), *levels) == got or (
        math.isnan(got[0]) and got[1] == enums.EXIT_NONE
    )


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 40),
    corrupt=st.sampled_from(["none", "nan", "zero", "ts", "bracket", "volume"]),
)
def test_candles_ok_nb_matches_reference(seed, n, corrupt):
    o, h, lo, c, v = (np.array(x) for x in random_market(seed, n, 0.1))
    ts = np.arange(n, dtype=np.int64) * 60_000
    k = seed % n
    if corrupt == "nan":
        (o, h, lo, c)[seed % 4][k] = np.nan
    elif corrupt == "zero":
        (o, h, lo, c)[seed % 4][k] = 0.0
    elif corrupt == "ts" and n > 1:
        ts[max(k, 1)] = ts[max(k, 1) - 1]
    elif corrupt == "bracket":
        h[k] = min(o[k], c[k]) * 0.99
    elif corrupt == "volume":
        v[k] = -1.0
    assert nb.candles_ok_nb(ts, o, h, lo, c, v) == ref.candles_ok(ts, o, h, lo, c, v)
    if corrupt != "none" and not (corrupt == "ts" and n == 1):
        assert not nb.candles_ok_nb(ts, o, h, lo, c, v)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 50), factor=st.sampled_from([0.0, 0.1, 5.0]))
def test_volatility_slippage_nb_matches_reference(seed, n, factor):
    _, h, lo, c, _ = random_market(seed, n, 0.2)
    got = nb.volatility_slippage_nb(h, lo, c, 0.0005, factor)
    np.testing.assert_array_equal(got, [ref.slip_rate(0.0005, factor, *x) for x in zip(h, lo, c, strict=True)])
    assert (got <= nb.MAX_SLIPPAGE).all()


def test_simulate_nb_length_one_size_and_slippage_broadcast_bit_identically():
    market = random_market(8, 400, 0.1)
    rng = np.random.default_rng(9)
    le, lx = rng.random(400) < 0.05, rng.random(400) < 0.05
    z = np.zeros(400, dtype=np.bool_)

    def final(size, slip):
        stats = np.zeros(enums.N_STATS)
        marks = np.empty((400, enums.N_MARK_FIELDS))
        nb.simulate_nb(
            *market, le, lx, z, z, np.zeros(0), size, slip, enums.MODE_SIGNALS, enums.FILL_NEXT_OPEN,
            enums.SIZE_PERCENT, 1e4, 0.001, 0.02, 0.05, 0.03, 1.0, 0.5, 0.0,
            marks, np.empty((400, 12)), stats,
        )  # fmt: skip
        return account(marks, stats, market[3], 1e4)[0], stats

    eq_full, st_full = final(np.full(400, 0.7), np.full(400, 0.001))
    eq_one, st_one = final(np.full(1, 0.7), np.full(1, 0.001))
    np.testing.assert_array_equal(eq_full, eq_one)
    np.testing.assert_array_equal(st_full, st_one)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 5000), gap=st.integers(0, 4999))
def test_median_step_nb_matches_reference(n, gap):
    ts = np.arange(n, dtype=np.int64) * 60_000
    ts[min(gap, n - 1) :] += 3_600_000  # one gap somewhere
    assert nb.median_step_nb(ts, 2000) == ref.median_step(ts, 2000)


@njit(parallel=True, cache=True)
def _sweep_final_equity(o, h, lo, c, v, entries, exits, stop_losses):
    """What the sweep kernel does: one simulate_nb per parameter, threads over parameters."""
    n, k = c.shape[0], stop_losses.shape[0]
    out = np.empty(k)
    z = np.zeros(n, dtype=np.bool_)
    for j in prange(k):
        out[j] = nb.simulate_nb(
            o,
            h,
            lo,
            c,
            v,
            entries,
            exits,
            z,
            z,
            np.zeros(0),
            np.ones(1),
            np.full(1, 0.0005),
            enums.MODE_SIGNALS,
            enums.FILL_NEXT_OPEN,
            enums.SIZE_PERCENT,
            1e4,
            0.001,
            stop_losses[j],
            0.0,
            0.0,
            1.0,
            np.inf,
            0.0,
            np.empty((0, enums.N_MARK_FIELDS)),
            np.empty((0, enums.N_TRADE_FIELDS)),
            np.empty(0),
        )
    return out


def test_simulate_nb_called_from_parallel_kernel_matches_single_runs():
    market = random_market(21, 3000, 0.05)
    rng = np.random.default_rng(22)
    le, lx = rng.random(3000) < 0.02, rng.random(3000) < 0.02
    stops = np.array([0.0, 0.01, 0.02, 0.05, 0.1])
    swept = _sweep_final_equity(*market, le, lx, stops)
    z = np.zeros(3000, dtype=np.bool_)
    for j, sl in enumerate(stops):
        single = nb.simulate_nb(
            *market, le, lx, z, z, np.zeros(0), np.ones(1), np.full(1, 0.0005), enums.MODE_SIGNALS,
            enums.FILL_NEXT_OPEN, enums.SIZE_PERCENT, 1e4, 0.001, sl, 0.0, 0.0, 1.0, np.inf, 0.0,
            np.empty((3000, enums.N_MARK_FIELDS)), np.empty((3000, enums.N_TRADE_FIELDS)),
            np.zeros(enums.N_STATS),
        )  # fmt: skip
        assert swept[j] == single  # bit-identical
    assert len(set(swept.tolist())) > 1

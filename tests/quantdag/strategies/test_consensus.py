"""Multi-strategy consensus ("consensus") on real Kraken candles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag.errors import ConfigurationError
from quantdag.strategies import Consensus, MemberSpec, create_strategy, get_strategy, register, unregister

from .fixture_strategies import SmaLongShort

TREND = [
    {"name": "sma_cross", "params": {"fast": 10, "slow": 50}, "weight": 3.0},
    {"name": "ema_cross", "params": {"fast": 12, "slow": 26}, "weight": 1.0},
    {"name": "macd", "params": {}, "weight": 1.0},
]


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDC", "1h")


def _member_states(candles: pl.DataFrame, members: list[dict]) -> np.ndarray:
    """Each member's long state rebuilt with a plain loop over its own signals (rows x members)."""
    cols = []
    for m in members:
        sig = create_strategy(m["name"], m["params"]).signals(candles)
        state, col = 0, []
        for e, x in zip(sig["entry"], sig["exit"], strict=True):
            state = 0 if x else (1 if e else state)
            col.append(state)
        cols.append(col)
    return np.array(cols).T


def _transitions(long: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prev = np.r_[False, long[:-1]]
    return long & ~prev, ~long & prev


def test_consensus_majority_long_when_most_members_long(candles):
    out = Consensus(members=TREND, mode="majority").signals(candles)
    states = _member_states(candles, TREND)
    long = states.sum(axis=1) >= 2
    entry, exit_ = _transitions(long)
    assert np.array_equal(out["entry"].to_numpy(), entry) and entry.sum() >= 5
    assert np.array_equal(out["exit"].to_numpy(), exit_)
    np.testing.assert_array_equal(out.select(out.columns[4:7]).to_numpy(), states)
    np.testing.assert_allclose(out["target"].to_numpy(), np.where(long, states.mean(axis=1), 0.0))


def test_consensus_weighted_follows_heavy_member(candles):
    out = Consensus(members=TREND, mode="weighted").signals(candles)
    states = _member_states(candles, TREND)
    share = states @ np.array([3.0, 1.0, 1.0]) / 5.0
    long = share > 0.5
    # weight 3 of 5: the SMA member alone is a weighted majority
    assert np.array_equal(long, states[:, 0] == 1)
    assert np.array_equal(out["entry"].to_numpy(), _transitions(long)[0])
    np.testing.assert_allclose(out["agree_long"].to_numpy(), share)


def test_consensus_unanimous_needs_every_member(candles):
    out = Consensus(members=TREND, mode="unanimous").signals(candles)
    states = _member_states(candles, TREND)
    long = states.all(axis=1)
    assert np.array_equal(out["entry"].to_numpy(), _transitions(long)[0])
    assert out["entry"].sum() > 0
    # whenever all agree, a majority agrees too (the converse fails often)
    majority = Consensus(members=TREND, mode="majority").signals(candles)
    held, held_by_majority = out["target"] > 0, majority["target"] > 0
    assert not (held & ~held_by_majority).any() and (held_by_majority & ~held).any()
    assert set(out["target"].unique().to_list()) == {0.0, 1.0}


def test_consensus_min_agreement_raises_bar_above_majority(candles):
    four = [*TREND, {"name": "sma_cross", "params": {"fast": 20, "slow": 100}, "weight": 1.0}]
    out = Consensus(members=four, mode="majority", min_agreement=0.7).signals(candles)
    states = _member_states(candles, four)
    long = states.sum(axis=1) >= 3  # 3 of 4 = 0.75 >= 0.7; 2 of 4 is not a majority anyway
    assert np.array_equal(out["entry"].to_numpy(), _transitions(long)[0])
    strict = Consensus(members=four, mode="majority", min_agreement=0.8).signals(candles)
    assert np.array_equal(strict["entry"].to_numpy(), _transitions(states.all(axis=1))[0])


def test_consensus_single_member_reproduces_member_position(candles):
    member = {"name": "rsi", "params": {"exit_mid": True}, "weight": 1.0}
    out = Consensus(members=[member]).signals(candles)
    long = _member_states(candles, [member])[:, 0] == 1
    assert np.array_equal(out["entry"].to_numpy(), _transitions(long)[0])


def test_consensus_members_accept_specs_tuples_names_and_nesting(candles):
    inner = {"members": ["sma_cross", "macd"], "mode": "unanimous"}
    s = Consensus(members=[MemberSpec("rsi"), ("consensus", inner, 2), "ema_cross"])
    assert [m["name"] for m in s.members] == ["rsi", "consensus", "ema_cross"]
    assert s.members[1]["params"]["members"][0]["params"] == {"fast": 10, "slow": 50, "ma_type": "sma"}
    assert s.startup_candles == max(m.startup_candles for m in s.member_strategies) + s.memory
    out = s.signals(candles)
    assert out.columns[4:7] == ["vote_0_rsi", "vote_1_consensus", "vote_2_ema_cross"]


def test_consensus_params_hash_depends_on_member_params():
    a = Consensus(members=[{"name": "sma_cross", "params": {"fast": 10}}])
    b = Consensus(members=[{"name": "sma_cross", "params": {"fast": 11}}])
    c = Consensus(members=[("sma_cross", {"fast": 10, "slow": 50}, 1)])
    assert a.params_hash != b.params_hash
    assert a.params_hash == c.params_hash


def test_consensus_short_member_adds_short_votes_and_columns(candles):
    try:
        register(SmaLongShort)
        members = [{"name": "test_sma_long_short"}, {"name": "test_sma_long_short", "params": {"fast": 5, "slow": 30}}]
        s = Consensus(members=members, mode="unanimous")
        out = s.signals(candles)
    finally:
        unregister("test_sma_long_short")
    assert s.emits_shorts()
    assert {"short_entry", "short_exit", "agree_short"} <= set(out.columns)
    assert out["vote_0_test_sma_long_short"].unique().sort().to_list() == [-1, 0, 1]
    short = (out["vote_0_test_sma_long_short"] == -1) & (out["vote_1_test_sma_long_short"] == -1)
    assert out.filter(short)["target"].eq(-1.0).all() and out["short_entry"].sum() > 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"members": [{"name": "nope"}]}, r"members\[0\] \('nope'\): unknown strategy 'nope'; known strategies: "),
        (
            {"members": ["rsi", {"name": "sma_cross", "params": {"fast": 80}}]},
            r"members\[1\] \('sma_cross'\): sma_cross: constraint 'fast < slow' violated by fast=80, slow=50",
        ),
        ({"members": [("rsi", {}, 0)]}, r"members\[0\] \('rsi'\): weight must be a finite number > 0, got 0"),
        ({"members": []}, r"parameter 'members': must be a non-empty list"),
        ({"members": [{"strategy": "rsi"}]}, r"members\[0\] must have keys name"),
        ({"mode": "plurality"}, r"parameter 'mode' must be one of \['majority', 'weighted', 'unanimous'\]"),
        ({"min_agreement": 0.4}, r"parameter 'min_agreement' must be in \[0.5, 1\], got 0.4"),
    ],
)
def test_consensus_invalid_params_rejected_naming_parameter(params, message):
    with pytest.raises(ConfigurationError, match=message):
        get_strategy("consensus").from_params(params)

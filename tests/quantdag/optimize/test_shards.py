"""A sweep split into shards merges to the one-process sweep bit for bit; Optuna shards share one study."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles
from polars.testing import assert_frame_equal

from quantdag.optimize import optimize_strategy
from quantdag.optimize.search import plan_sweep
from quantdag.optimize.shards import (
    MissingShards,
    ShardMismatch,
    evaluate_shard,
    evaluate_study_shard,
    merge_shards,
    merge_study,
    read_shard,
    shard_indices,
    study_trials,
    sweep_id,
    trials_of_shard,
    write_shard,
)


@pytest.fixture(scope="module")
def kraken() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h").tail(4000)


def assert_same_result(a, b) -> None:
    """Same rows in the same order with the same bits, same best, DSR and PBO (logits included)."""
    assert_frame_equal(a.results, b.results, check_exact=True)
    assert a.results.hash_rows().to_list() == b.results.hash_rows().to_list()
    assert a.best == b.best
    assert a.dsr == b.dsr
    assert (a.pbo is None) == (b.pbo is None)
    if a.pbo is not None:
        assert a.pbo.as_dict() == b.pbo.as_dict() and np.array_equal(a.pbo.logits, b.pbo.logits)
    assert repr(a.summary()) == repr(b.summary())


CASES = {
    "grid-kernel": dict(strategy_name="sma_cross", search="grid", min_trades=3),
    "random-generic": dict(strategy_name="rsi", search="random", n_trials=30, min_trades=2, pbo_blocks=8),
    "grid-fit-history": dict(strategy_name="sma_cross", search="grid", grid={"fast": [5, 20, 60], "slow": [40, 150, 900]},
                             min_trades=1, fit_history=True),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_three_shards_in_any_order_merge_to_the_one_process_sweep_bit_for_bit(kraken, case):
    kw = CASES[case]
    single = optimize_strategy(kraken, **kw, n_jobs=1)
    plan = plan_sweep(kraken, **kw)
    shards = [evaluate_shard(kraken, plan, k, 3, n_jobs=1) for k in range(3)]
    for seed in (0, 1, 2):
        order = shards[:]
        random.Random(seed).shuffle(order)
        assert_same_result(merge_shards(kraken, plan, order), single)


def test_shards_round_trip_through_files_and_still_merge_bit_for_bit(kraken, tmp_path):
    kw = CASES["grid-kernel"]
    single = optimize_strategy(kraken, **kw)
    plan = plan_sweep(kraken, **kw)
    paths = [write_shard(evaluate_shard(kraken, plan, k, 3), tmp_path / f"shard-{k}.parquet", {"run": f"r{k}"}) for k in (2, 0, 1)]
    read = [read_shard(p) for p in paths]
    assert sorted(s.header["run"] for s in read) == ["r0", "r1", "r2"]
    assert_same_result(merge_shards(kraken, plan, read), single)


def test_split_is_round_robin_over_the_canonical_enumeration_and_covers_it_once():
    parts = [shard_indices(10, k, 3) for k in range(3)]
    assert [p.tolist() for p in parts] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert sum(trials_of_shard(10, k, 3) for k in range(3)) == 10


def test_more_shards_than_combinations_leaves_empty_shards_that_still_merge(kraken):
    kw = dict(strategy_name="sma_cross", grid={"fast": [5, 10], "slow": [30, 50]}, min_trades=1)
    plan = plan_sweep(kraken, **kw)
    shards = [evaluate_shard(kraken, plan, k, 6) for k in range(6)]
    assert [s.results.height for s in shards] == [1, 1, 1, 1, 0, 0]
    assert_same_result(merge_shards(kraken, plan, shards[::-1]), optimize_strategy(kraken, **kw))


def test_merge_with_a_missing_shard_fails_naming_it(kraken):
    plan = plan_sweep(kraken, "sma_cross", grid={"fast": [5, 10, 20], "slow": [30, 50]}, min_trades=1)
    shards = [evaluate_shard(kraken, plan, k, 3) for k in range(3)]
    with pytest.raises(MissingShards, match=r"shard\(s\) 1 of 3 missing") as err:
        merge_shards(kraken, plan, [shards[0], shards[2]])
    assert err.value.missing == (1,)


def test_merge_refuses_a_shard_twice_mixed_splits_or_another_plans_shards(kraken):
    plan = plan_sweep(kraken, "sma_cross", grid={"fast": [5, 10, 20], "slow": [30, 50]}, min_trades=1)
    other = plan_sweep(kraken, "sma_cross", grid={"fast": [5, 10], "slow": [30, 50]}, min_trades=1)
    three = [evaluate_shard(kraken, plan, k, 3) for k in range(3)]
    with pytest.raises(ShardMismatch, match="twice"):
        merge_shards(kraken, plan, [*three, three[1]])
    with pytest.raises(ShardMismatch, match="different splits"):
        merge_shards(kraken, plan, [*three[:2], evaluate_shard(kraken, plan, 1, 2)])
    with pytest.raises(ShardMismatch, match="another plan"):
        merge_shards(kraken, plan, [evaluate_shard(kraken, other, k, 3) for k in range(3)])


def test_sweep_id_changes_with_candles_options_and_split(kraken):
    plan = plan_sweep(kraken, "sma_cross", grid={"fast": [5, 10], "slow": [30, 50]})
    base = sweep_id(plan, kraken, 3, market="sim:BTC/USDT:1h")
    assert base == sweep_id(plan_sweep(kraken, "sma_cross", grid={"fast": [5, 10], "slow": [30, 50]}), kraken, 3,
                            market="sim:BTC/USDT:1h")  # fmt: skip
    assert base != sweep_id(plan, kraken, 2, market="sim:BTC/USDT:1h")
    assert base != sweep_id(plan, kraken.with_columns(pl.col("close") * 1.0000001), 3, market="sim:BTC/USDT:1h")
    assert base != sweep_id(plan_sweep(kraken, "sma_cross", grid={"fast": [5, 10], "slow": [30, 50]}, fee=0.002), kraken, 3,
                            market="sim:BTC/USDT:1h")  # fmt: skip


def test_optuna_shards_share_one_study_in_a_sqlite_file_and_resume_without_extra_trials(kraken, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    plan = plan_sweep(kraken, "sma_cross", search="bayes", n_trials=11, min_trades=1, pbo_blocks=8)
    name = "sweep-" + sweep_id(plan, kraken, 3)
    shards = [evaluate_study_shard(kraken, plan, k, 3, storage=url, study_name=name) for k in range(3)]
    trials = study_trials(url, name)
    assert len(trials) == 11 == sum(trials_of_shard(11, k, 3) for k in range(3))
    assert [sum(t.user_attrs["quantdag.shard"] == k for t in trials) for k in range(3)] == [4, 4, 3]
    # every evaluated trial of the one study is a row of exactly one shard
    assert sorted(r for s in shards for r in s.results["combo"].to_list()) == sorted(
        t.number for t in trials if "quantdag.row" in t.user_attrs)
    again = evaluate_study_shard(kraken, plan, 1, 3, storage=url, study_name=name)  # a re-run resumes: nothing to add
    assert len(study_trials(url, name)) == 11 and again.results.equals(shards[1].results)
    result = merge_study(kraken, plan, storage=url, study_name=name)
    evaluated = [t for t in trials if "quantdag.row" in t.user_attrs]
    assert 1 <= result.results.height <= len(evaluated)
    assert result.pbo is not None and 0.0 <= result.pbo.pbo <= 1.0 and 0.0 <= result.dsr.dsr <= 1.0
    best = result.results.filter(pl.col("n_trades") >= 1)["sharpe"].max()
    assert result.best["metrics"]["sharpe"] == best


def test_merge_of_a_study_no_shard_ran_fails_typed(kraken, tmp_path):
    plan = plan_sweep(kraken, "sma_cross", search="bayes", n_trials=3)
    with pytest.raises(MissingShards, match="no Optuna study"):
        merge_study(kraken, plan, storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="nothing-ran")

"""Purged validation: training rows whose outcome overlaps a test block are dropped; CPCV combinatorics."""

from __future__ import annotations

import numpy as np
import pytest
from skfolio.model_selection import CombinatorialPurgedCV

from quantdag.errors import DataError
from quantdag.ml.validation import (
    combinatorial_purged,
    cpcv_path_assignment,
    cpcv_paths,
    cpcv_test_sets,
    iter_leaks,
    purge,
    purged_kfold,
    time_blocks,
    walk_forward,
)


def _panel(n_times=200, markets=3, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.repeat(np.arange(n_times, dtype=np.int64) * 10, markets)
    known = ts + 10 * rng.integers(1, 25, ts.shape[0])  # variable horizons (triple barrier)
    return ts, known


def test_label_overlapping_the_test_block_is_purged():
    ts = np.arange(10, dtype=np.int64) * 10
    known = ts + 25  # each outcome spans the next 2.5 candles
    train = np.array([0, 1, 2, 3, 7, 8, 9])
    test = np.array([4, 5, 6])  # ts 40..60, outcomes known by 85
    kept = purge(train, test, ts, known)
    assert kept.tolist() == [0, 1, 9]  # 2 and 3 end inside the test block, 7 and 8 start before its last outcome
    assert purge(train, test, ts, known, embargo=10).tolist() == [0, 1]


@pytest.mark.parametrize("make", [
    lambda ts, k: walk_forward(ts, k, 4),
    lambda ts, k: purged_kfold(ts, k, 5, embargo=30),
    lambda ts, k: combinatorial_purged(ts, k, 6, 2, embargo=30),
])  # fmt: skip
def test_no_training_outcome_overlaps_a_test_outcome(make):
    ts, known = _panel()
    splits = make(ts, known)
    assert splits and all(s.train.size > 0 and s.test.size > 0 for s in splits)
    assert list(iter_leaks(splits, ts, known)) == []
    assert all(np.intersect1d(s.train, s.test).size == 0 for s in splits)


def test_walk_forward_trains_only_on_labels_known_before_the_test_starts_and_tests_each_row_once():
    ts, known = _panel()
    splits = walk_forward(ts, known, 4, min_train_blocks=2)
    for s in splits:
        assert known[s.train].max() < ts[s.test].min()
    tested = np.concatenate([s.test for s in splits])
    assert np.unique(tested).shape[0] == tested.shape[0]


def test_every_market_of_a_time_lands_in_the_same_block():
    ts, _ = _panel(markets=4)
    blocks = time_blocks(ts, 7)
    assert all(len(set(blocks[ts == t])) == 1 for t in np.unique(ts))


def test_cpcv_combinatorics_match_skfolio():
    cv = CombinatorialPurgedCV(n_folds=6, n_test_folds=2)
    assert [tuple(s) for s in cv.test_set_index] == cpcv_test_sets(6, 2)
    assert cv.n_test_paths == cpcv_paths(6, 2)
    np.testing.assert_array_equal(cv.recombined_paths, cpcv_path_assignment(6, 2))


def test_label_known_at_its_own_candle_is_refused():
    ts = np.arange(10, dtype=np.int64)
    with pytest.raises(DataError, match="known_at"):
        walk_forward(ts, ts, 2)

"""Purged validation of a panel (many markets, one row per market and candle) by time.

Rows are split by **time**, not by row number: every market's candle at ``ts`` lands in the
same fold, so a model never trains on BTC at 10:00 and tests on ETH at 10:00. A training row is
**purged** when its label's outcome interval ``[ts, known_at]`` overlaps a test block's
``[first ts, last known_at]`` -- exactly, with each row's own ``known_at`` (a triple-barrier
label settled early is kept; a fixed-horizon one is dropped for its whole horizon). An
**embargo** also drops training rows starting within ``embargo`` ms after a test block (their
features overlap the test block's outcomes through serial correlation).

Why not ``skfolio.model_selection.CombinatorialPurgedCV`` (1.12.2, installed) directly: it
purges a fixed number of *rows* around each test fold, which is exact only for one market with a
fixed horizon; on a panel, rows are not time steps, and a triple-barrier label's horizon varies.
Its combinatorics (``n_folds`` choose ``n_test_folds`` and the recombined backtest paths) are
reproduced here over time blocks (a test pins that our split choice matches its
``test_set_index`` / path count).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from quantdag.errors import ConfigurationError, DataError


@dataclass(frozen=True)
class Split:
    """Row indices of one split; ``test_blocks`` are the time blocks (fold numbers) it tests."""

    train: np.ndarray
    test: np.ndarray
    test_blocks: tuple[int, ...] = ()


def _check(ts: np.ndarray, known_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ts = np.asarray(ts, dtype=np.int64)
    known_at = np.asarray(known_at, dtype=np.int64)
    if ts.shape != known_at.shape or ts.ndim != 1:
        raise DataError(f"ts and known_at must be 1-d of one length, got {ts.shape} and {known_at.shape}")
    if (known_at <= ts).any():
        i = int(np.flatnonzero(known_at <= ts)[0])
        raise DataError(f"row {i}: known_at {known_at[i]} is not after ts {ts[i]} (a label is known after its candle)")
    return ts, known_at


def time_blocks(ts: np.ndarray, n_blocks: int) -> np.ndarray:
    """Block number (0..n_blocks-1) of each row: the distinct times cut into equal consecutive runs."""
    times = np.unique(ts)
    if times.shape[0] < n_blocks:
        raise DataError(f"{times.shape[0]} distinct times are too few for {n_blocks} blocks")
    per_time = np.minimum(np.arange(times.shape[0]) * n_blocks // times.shape[0], n_blocks - 1)
    return per_time[np.searchsorted(times, ts)]


def purge(train: np.ndarray, test: np.ndarray, ts: np.ndarray, known_at: np.ndarray, embargo: int = 0) -> np.ndarray:
    """``train`` without rows whose ``[ts, known_at]`` overlaps a contiguous test block, nor rows
    starting within ``embargo`` ms after it. ``test`` may hold several blocks (CPCV): each
    contiguous run of test times is purged on its own."""
    if test.size == 0 or train.size == 0:
        return train
    times = np.unique(ts[test])
    all_times = np.unique(ts)
    # contiguous runs of test times, over the full time axis
    pos = np.searchsorted(all_times, times)
    cuts = np.flatnonzero(np.diff(pos) > 1) + 1
    keep = np.ones(train.shape[0], dtype=bool)
    t_tr, k_tr = ts[train], known_at[train]
    for run in np.split(np.arange(times.shape[0]), cuts):
        start, last = times[run[0]], times[run[-1]]
        in_run = (ts[test] >= start) & (ts[test] <= last)
        end = known_at[test][in_run].max()
        overlap = (t_tr <= end) & (k_tr >= start)
        embargoed = (t_tr > end) & (t_tr <= end + embargo) if embargo else np.zeros_like(keep)
        keep &= ~(overlap | embargoed)
    return train[keep]


def walk_forward(ts: np.ndarray, known_at: np.ndarray, n_splits: int, *, min_train_blocks: int = 1,
                 max_train: int | None = None) -> list[Split]:  # fmt: skip
    """Expanding (or ``max_train`` ms rolling) walk-forward: the time axis in ``n_splits +
    min_train_blocks`` blocks, each later block tested by a model trained on rows *known* before
    it starts -- a gap of exactly each label's horizon. Every row after the first
    ``min_train_blocks`` blocks is tested once."""
    ts, known_at = _check(ts, known_at)
    if n_splits < 1 or min_train_blocks < 1:
        raise ConfigurationError(f"need n_splits >= 1 and min_train_blocks >= 1, got {n_splits}, {min_train_blocks}")
    blocks = time_blocks(ts, n_splits + min_train_blocks)
    out = []
    for b in range(min_train_blocks, n_splits + min_train_blocks):
        test = np.flatnonzero(blocks == b)
        start = ts[test].min()
        mask = known_at < start
        if max_train is not None:
            mask &= ts >= start - max_train
        out.append(Split(np.flatnonzero(mask), test, (b,)))
    return out


def purged_kfold(ts: np.ndarray, known_at: np.ndarray, n_folds: int, *, embargo: int = 0) -> list[Split]:
    """K-fold over time blocks with purging and embargo (AFML 7.4): trains on both sides of the test fold."""
    ts, known_at = _check(ts, known_at)
    if n_folds < 2:
        raise ConfigurationError(f"n_folds must be >= 2, got {n_folds}")
    blocks = time_blocks(ts, n_folds)
    rows = np.arange(ts.shape[0])
    out = []
    for b in range(n_folds):
        test = rows[blocks == b]
        out.append(Split(purge(rows[blocks != b], test, ts, known_at, embargo), test, (b,)))
    return out


def cpcv_test_sets(n_folds: int, n_test_folds: int) -> list[tuple[int, ...]]:
    """Every choice of ``n_test_folds`` test blocks out of ``n_folds``, in lexicographic order."""
    if not 1 <= n_test_folds < n_folds:
        raise ConfigurationError(f"need 1 <= n_test_folds < n_folds, got {n_test_folds}, {n_folds}")
    return list(itertools.combinations(range(n_folds), n_test_folds))


def cpcv_paths(n_folds: int, n_test_folds: int) -> int:
    """Number of complete backtest paths CPCV recombines: C(n, k) * k / n."""
    return math.comb(n_folds, n_test_folds) * n_test_folds // n_folds


def combinatorial_purged(ts: np.ndarray, known_at: np.ndarray, n_folds: int, n_test_folds: int, *,
                         embargo: int = 0) -> list[Split]:  # fmt: skip
    """Combinatorial purged CV (AFML 12.4): each split tests ``n_test_folds`` blocks and trains on
    the rest, purged and embargoed around every test block."""
    ts, known_at = _check(ts, known_at)
    blocks = time_blocks(ts, n_folds)
    rows = np.arange(ts.shape[0])
    out = []
    for chosen in cpcv_test_sets(n_folds, n_test_folds):
        is_test = np.isin(blocks, chosen)
        test = rows[is_test]
        out.append(Split(purge(rows[~is_test], test, ts, known_at, embargo), test, chosen))
    return out


def cpcv_path_assignment(n_folds: int, n_test_folds: int) -> np.ndarray:
    """``(n_folds, n_paths)`` split index that supplies each block of each recombined path.

    Block ``b`` is tested by the splits whose test sets contain it, in order; path ``p`` takes
    the ``p``-th of them (the same recombination as skfolio's ``recombined_paths``).
    """
    sets = cpcv_test_sets(n_folds, n_test_folds)
    n_paths = cpcv_paths(n_folds, n_test_folds)
    out = np.full((n_folds, n_paths), -1, dtype=np.int64)
    for b in range(n_folds):
        owners = [i for i, s in enumerate(sets) if b in s]
        out[b, :] = owners[:n_paths]
    return out


def iter_leaks(splits: list[Split], ts: np.ndarray, known_at: np.ndarray) -> Iterator[tuple[int, int]]:
    """(split, row) of every training row whose outcome interval overlaps a test row's -- for tests."""
    for i, s in enumerate(splits):
        if s.test.size == 0 or s.train.size == 0:
            continue
        order = np.argsort(ts[s.test])
        t_te, k_te = ts[s.test][order], known_at[s.test][order]
        run_max = np.maximum.accumulate(k_te)
        for r in s.train:
            # any test row with ts_test <= known_at[r] and known_at_test >= ts[r]
            hi = np.searchsorted(t_te, known_at[r], side="right")
            if hi and run_max[hi - 1] >= ts[r]:
                yield i, int(r)

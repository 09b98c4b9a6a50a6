"""Overfitting checks: the deflated Sharpe ratio and the probability of backtest overfitting.

Deflated Sharpe ratio (Bailey & López de Prado, 2014, "The Deflated Sharpe Ratio")
----------------------------------------------------------------------------------
All Sharpe ratios here are **per period** (not annualised). With ``N`` trials whose Sharpe
ratios have variance ``V``, the expected maximum Sharpe of ``N`` skill-less trials is::

    SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))      g = Euler-Mascheroni, Z = inverse normal cdf

and the DSR is the probabilistic Sharpe ratio of the selected strategy against ``SR0``::

    DSR = Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))

``T`` = number of returns, ``skew``/``kurt`` (non-excess, normal = 3) of the selected returns.

Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado & Zhu, 2015)
-----------------------------------------------------------------------------------------
The ``T x N`` matrix of per-period returns of ``N`` trials is cut into ``S`` (even) blocks;
every choice of ``S/2`` blocks is an in-sample set, the rest out-of-sample. In each split the
trial with the best in-sample Sharpe is found, its out-of-sample rank ``r`` among the ``N``
gives ``w = r / (N + 1)`` and the logit ``log(w / (1 - w))``; PBO is the share of splits with a
logit <= 0 (the in-sample winner is at or below the out-of-sample median).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import numpy as np
from scipy import stats

from quantdag.errors import ConfigurationError, DataError

EULER_GAMMA = 0.5772156649015329


def expected_max_sharpe(n_trials: int, sharpe_var: float) -> float:
    """``SR0``: expected maximum per-period Sharpe of ``n_trials`` skill-less trials."""
    if n_trials < 1:
        raise ConfigurationError(f"n_trials must be >= 1, got {n_trials!r}")
    if n_trials == 1:
        return 0.0
    z = stats.norm.ppf
    return math.sqrt(max(sharpe_var, 0.0)) * (
        (1.0 - EULER_GAMMA) * z(1.0 - 1.0 / n_trials) + EULER_GAMMA * z(1.0 - 1.0 / (n_trials * math.e))
    )


def probabilistic_sharpe(sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0, kurt: float = 3.0) -> float:
    """``PSR``: probability that the true per-period Sharpe exceeds ``benchmark``."""
    if n_obs < 2:
        raise DataError(f"need at least 2 returns for a Sharpe ratio's distribution, got {n_obs}")
    den = 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe**2
    if not den > 0.0:
        return math.nan
    return float(stats.norm.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(den)))


def deflated_sharpe(
    sharpe: float, n_obs: int, n_trials: int, sharpe_var: float, skew: float = 0.0, kurt: float = 3.0
) -> float:
    """Deflated Sharpe ratio of a per-period ``sharpe`` chosen as the best of ``n_trials``."""
    return probabilistic_sharpe(sharpe, expected_max_sharpe(n_trials, sharpe_var), n_obs, skew, kurt)


@dataclass(frozen=True)
class DSRResult:
    dsr: float
    sharpe: float  # per period
    sr0: float  # expected max Sharpe under the null, per period
    n_trials: int
    n_obs: int
    skew: float
    kurt: float
    sharpe_var: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def deflated_sharpe_from_returns(returns: np.ndarray, n_trials: int, trial_sharpes: np.ndarray) -> DSRResult:
    """DSR of the selected strategy's per-period ``returns``, given every trial's per-period Sharpe."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.shape[0] < 3:
        raise DataError(f"need at least 3 finite returns for the deflated Sharpe ratio, got {r.shape[0]}")
    sd = r.std(ddof=1)
    sr = float(r.mean() / sd) if sd > 0 else math.nan
    ts = np.asarray(trial_sharpes, dtype=np.float64)
    ts = ts[np.isfinite(ts)]
    var = float(ts.var(ddof=1)) if ts.shape[0] > 1 else 0.0
    skew = float(stats.skew(r)) if sd > 0 else 0.0
    kurt = float(stats.kurtosis(r, fisher=False)) if sd > 0 else 3.0
    sr0 = expected_max_sharpe(n_trials, var)
    dsr = probabilistic_sharpe(sr, sr0, r.shape[0], skew, kurt) if math.isfinite(sr) else math.nan
    return DSRResult(dsr, sr, sr0, int(n_trials), int(r.shape[0]), skew, kurt, var)


@dataclass(frozen=True)
class PBOResult:
    pbo: float
    logits: np.ndarray
    n_splits: int
    n_blocks: int
    n_trials: int

    def as_dict(self) -> dict[str, float]:
        return {"pbo": float(self.pbo), "n_splits": self.n_splits, "n_blocks": self.n_blocks,
                "n_trials": self.n_trials, "logit_median": float(np.median(self.logits))}  # fmt: skip


def block_stats(returns: np.ndarray, n_blocks: int) -> np.ndarray:
    """``(3, n_blocks, N)``: count, sum and sum of squares of each trial's returns per block."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise DataError(f"returns must be a (T, N) matrix, got shape {r.shape}")
    edges = np.linspace(0, r.shape[0], n_blocks + 1).round().astype(int)
    out = np.empty((3, n_blocks, r.shape[1]))
    for b in range(n_blocks):
        seg = r[edges[b] : edges[b + 1]]
        out[0, b] = seg.shape[0]
        out[1, b] = seg.sum(axis=0)
        out[2, b] = (seg * seg).sum(axis=0)
    return out


def _sharpe_of(blocks: np.ndarray, idx: list[int]) -> np.ndarray:
    """Per-period Sharpe of every trial over the blocks ``idx`` (-inf where undefined): the
    reference of :func:`_logits`, which computes the same numbers for many splits at once."""
    n = blocks[0, idx].sum(axis=0)
    s1 = blocks[1, idx].sum(axis=0)
    s2 = blocks[2, idx].sum(axis=0)
    mean = s1 / n
    var = (s2 - s1 * mean) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(np.maximum(var, 0.0))
    return np.where(np.isfinite(sr), sr, -np.inf)


def _logits_reference(blocks: np.ndarray, splits: list[tuple[int, ...]], n_blocks: int) -> np.ndarray:
    """One split at a time, with ``scipy.stats.rankdata``: the oracle the tests hold :func:`_logits` to."""
    n_trials = blocks.shape[2]
    logits = np.empty(len(splits))
    for k, ins in enumerate(splits):
        oos = [b for b in range(n_blocks) if b not in ins]
        sr_in = _sharpe_of(blocks, list(ins))
        sr_out = _sharpe_of(blocks, oos)
        best = int(np.argmax(sr_in))
        rank = float(stats.rankdata(sr_out)[best])  # 1 = worst .. N = best (ties averaged)
        w = rank / (n_trials + 1)
        logits[k] = math.log(w / (1.0 - w))
    return logits


def _split_sharpes(blocks: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """``(n_splits, N)``: :func:`_sharpe_of` for each row of block indices ``sets``, with the
    block sums taken in the same order (one block after the other), so the same bits."""
    sums = []
    for k in range(3):
        g = blocks[k][sets]  # (n_splits, len(set), N)
        acc = g[:, 0].copy()
        for j in range(1, g.shape[1]):
            acc += g[:, j]
        sums.append(acc)
    n, s1, s2 = sums
    mean = s1 / n
    var = (s2 - s1 * mean) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(np.maximum(var, 0.0))
    return np.where(np.isfinite(sr), sr, -np.inf)


def _logits(blocks: np.ndarray, splits: list[tuple[int, ...]], n_blocks: int, batch: int = 256) -> np.ndarray:
    """The CSCV logit of every split, many splits per numpy call (:func:`_logits_reference`'s
    numbers exactly: the rank with ties averaged is ``#below + (#equal + 1) / 2``, an exact
    half-integer, and the logarithm is ``math.log`` as there)."""
    n_trials = blocks.shape[2]
    ins_all = np.asarray(splits, dtype=np.int64).reshape(len(splits), -1)
    mask = np.ones((len(splits), n_blocks), dtype=bool)
    mask[np.arange(len(splits))[:, None], ins_all] = False
    oos_all = np.nonzero(mask)[1].reshape(len(splits), n_blocks - ins_all.shape[1])  # ascending, as the reference
    logits = np.empty(len(splits))
    for a in range(0, len(splits), batch):
        sr_in = _split_sharpes(blocks, ins_all[a : a + batch])
        sr_out = _split_sharpes(blocks, oos_all[a : a + batch])
        best = np.argmax(sr_in, axis=1)
        x = sr_out[np.arange(best.shape[0]), best][:, None]
        rank = (sr_out < x).sum(axis=1) + ((sr_out == x).sum(axis=1) + 1) / 2.0
        for j, r in enumerate(rank.tolist()):
            w = r / (n_trials + 1)
            logits[a + j] = math.log(w / (1.0 - w))
    return logits


def pbo_cscv(
    returns: np.ndarray | None = None,
    *,
    n_blocks: int = 16,
    max_splits: int | None = 5000,
    seed: int = 0,
    blocks: np.ndarray | None = None,
) -> PBOResult:
    """Probability of backtest overfitting of a ``(T, N)`` per-period return matrix by CSCV.

    ``blocks`` (from :func:`block_stats`) may be given instead of ``returns``. With more than
    ``max_splits`` combinations of ``n_blocks / 2`` blocks, a seeded random subset is used.
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 2 or n_blocks % 2:
        raise ConfigurationError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    if blocks is None:
        if returns is None:
            raise ConfigurationError("pbo_cscv needs returns or blocks")
        r = np.asarray(returns, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] < 2:
            raise DataError(f"returns must be a (T, N >= 2) matrix, got shape {r.shape}")
        if r.shape[0] < 2 * n_blocks:
            raise DataError(f"{r.shape[0]} returns are too few for {n_blocks} blocks (need >= {2 * n_blocks})")
        blocks = block_stats(r, n_blocks)
    n_trials = blocks.shape[2]
    all_splits = math.comb(n_blocks, n_blocks // 2)
    if max_splits is not None and all_splits > max_splits:
        rng = random.Random(seed)
        seen: set[tuple[int, ...]] = set()
        while len(seen) < max_splits:
            seen.add(tuple(sorted(rng.sample(range(n_blocks), n_blocks // 2))))
        splits = sorted(seen)
    else:
        splits = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    logits = _logits(blocks, splits, n_blocks)
    return PBOResult(float((logits <= 0).mean()), logits, len(splits), n_blocks, n_trials)

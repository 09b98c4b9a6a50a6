"""Numba kernels of the ML package over plain arrays.

Rolling statistics are computed **from scratch for every window** (O(n * w)), not by adding the
new value and subtracting the old one: a running sum carries rounding from every earlier candle,
so a feature would differ in its last bits depending on where the history starts, and a tree
model's split can flip on one ulp. A from-scratch window makes each value a function of exactly
the last ``w`` candles, so a candle's features -- and hence its prediction -- are identical
whichever history or backtest window contains it (freqtrade #7666 is this class of bug).

Each kernel names its plain-numpy reference; the tests use it as the oracle.
"""

from __future__ import annotations

import numba as nb
import numpy as np

NAN = np.nan


@nb.njit(cache=True)
def rolling_mean_nb(x: np.ndarray, w: int) -> np.ndarray:
    """Mean of ``x[t-w+1 : t+1]``; NaN before ``w`` values or if any is NaN.

    Reference: ``np.lib.stride_tricks.sliding_window_view(x, w).mean(axis=1)`` (left-padded).
    """
    n = x.shape[0]
    out = np.full(n, NAN)
    for t in range(w - 1, n):
        s = 0.0
        for j in range(t - w + 1, t + 1):
            s += x[j]
        out[t] = s / w
    return out


@nb.njit(cache=True)
def rolling_std_nb(x: np.ndarray, w: int) -> np.ndarray:
    """Sample std (ddof=1) of ``x[t-w+1 : t+1]``, two-pass; NaN before ``w`` values.

    Reference: ``sliding_window_view(x, w).std(axis=1, ddof=1)``.
    """
    n = x.shape[0]
    out = np.full(n, NAN)
    if w < 2:
        return out
    for t in range(w - 1, n):
        s = 0.0
        for j in range(t - w + 1, t + 1):
            s += x[j]
        m = s / w
        ss = 0.0
        for j in range(t - w + 1, t + 1):
            d = x[j] - m
            ss += d * d
        out[t] = np.sqrt(ss / (w - 1))
    return out


@nb.njit(cache=True)
def rolling_max_nb(x: np.ndarray, w: int) -> np.ndarray:
    """Max of ``x[t-w+1 : t+1]`` (NaN propagates). Reference: ``sliding_window_view(x, w).max(axis=1)``."""
    n = x.shape[0]
    out = np.full(n, NAN)
    for t in range(w - 1, n):
        m = x[t - w + 1]
        for j in range(t - w + 2, t + 1):
            v = x[j]
            if v > m or np.isnan(v):
                m = v
        out[t] = m
    return out


@nb.njit(cache=True)
def rolling_min_nb(x: np.ndarray, w: int) -> np.ndarray:
    """Min of ``x[t-w+1 : t+1]`` (NaN propagates). Reference: ``sliding_window_view(x, w).min(axis=1)``."""
    return -rolling_max_nb(-x, w)


@nb.njit(cache=True)
def rolling_corr_nb(x: np.ndarray, y: np.ndarray, w: int) -> np.ndarray:
    """Pearson correlation of ``x`` and ``y`` over the last ``w`` values; NaN if either is flat.

    Reference: ``np.corrcoef(x[t-w+1:t+1], y[t-w+1:t+1])[0, 1]``.
    """
    n = x.shape[0]
    out = np.full(n, NAN)
    for t in range(w - 1, n):
        sx = 0.0
        sy = 0.0
        for j in range(t - w + 1, t + 1):
            sx += x[j]
            sy += y[j]
        mx = sx / w
        my = sy / w
        cxy = 0.0
        cxx = 0.0
        cyy = 0.0
        for j in range(t - w + 1, t + 1):
            dx = x[j] - mx
            dy = y[j] - my
            cxy += dx * dy
            cxx += dx * dx
            cyy += dy * dy
        if cxx > 0.0 and cyy > 0.0:
            out[t] = cxy / np.sqrt(cxx * cyy)
    return out


@nb.njit(cache=True)
def rolling_pct_rank_nb(x: np.ndarray, w: int) -> np.ndarray:
    """Mid-rank of ``x[t]`` among ``x[t-w+1 : t+1]`` in (0, 1): (less + (equal - 1) / 2 + 0.5) / w.

    NaN if any value of the window is NaN. Reference: ``scipy.stats.rankdata(win)[-1] - 0.5) / w``.
    """
    n = x.shape[0]
    out = np.full(n, NAN)
    for t in range(w - 1, n):
        v = x[t]
        less = 0
        equal = 0
        bad = np.isnan(v)
        for j in range(t - w + 1, t + 1):
            u = x[j]
            if np.isnan(u):
                bad = True
                break
            if u < v:
                less += 1
            elif u == v:
                equal += 1
        if not bad:
            out[t] = (less + (equal + 1) / 2.0 - 0.5) / w
    return out


@nb.njit(cache=True)
def triple_barrier_nb(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    vol: np.ndarray,
    horizon: int,
    up_mult: float,
    down_mult: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Volatility-scaled triple barrier of every candle (López de Prado, AFML ch. 3).

    From the close of candle ``t``, the upper barrier is ``close[t] * exp(up_mult * vol[t])``,
    the lower ``close[t] * exp(-down_mult * vol[t])``, the vertical one the close of
    ``t + horizon``. Candles ``t+1 .. t+horizon`` are scanned with their high and low; when both
    barriers lie inside one candle the lower (worse for a long) is taken first, as the backtest
    assumes for stops. Returns ``(label, exit_index, log_return)``: label +1 upper, -1 lower,
    0 vertical; -1 index / NaN where ``vol[t]`` is NaN or no barrier was touched before the data
    ends short of the vertical one (a barrier touched early is known even then).

    Reference: the same loop in plain Python (tests).
    """
    n = close.shape[0]
    label = np.zeros(n, dtype=np.int8)
    exit_ix = np.full(n, -1, dtype=np.int64)
    ret = np.full(n, NAN)
    for t in range(n):
        if np.isnan(vol[t]) or vol[t] <= 0.0:
            continue
        c0 = close[t]
        up = c0 * np.exp(up_mult * vol[t])
        dn = c0 * np.exp(-down_mult * vol[t])
        done = False
        for j in range(t + 1, min(t + horizon, n - 1) + 1):
            if low[j] <= dn:
                label[t] = -1
                exit_ix[t] = j
                ret[t] = np.log(dn / c0)
                done = True
                break
            if high[j] >= up:
                label[t] = 1
                exit_ix[t] = j
                ret[t] = np.log(up / c0)
                done = True
                break
        if not done and t + horizon < n:
            exit_ix[t] = t + horizon
            ret[t] = np.log(close[t + horizon] / c0)
    return label, exit_ix, ret

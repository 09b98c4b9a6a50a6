"""Input checks the API layer runs before a simulation, as single passes over the arrays."""

from __future__ import annotations

import sys

import numpy as np
from numba import njit


#: Largest finite float64. ``x <= MAX_FINITE`` has the truth value of ``x < inf`` for every float64
#: (NaN fails both), but LLVM rewrote ``v >= 0 and v < inf`` into a bit-pattern class test whose
#: vector form cost about a third of the whole check.
MAX_FINITE = sys.float_info.max


@njit(cache=True)
def _candle_ok_nb(o: float, h: float, lo: float, c: float, v: float) -> bool:
    finite = (lo > 0.0) & (h <= MAX_FINITE) & (v >= 0.0) & (v <= MAX_FINITE)
    return finite & (h >= o) & (h >= c) & (lo <= o) & (lo <= c)


@njit(cache=True)
def candles_ok_nb(
    ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> bool:
    """True when the candles keep the engine's contract, in one branch-free (vectorised) pass.

    Contract: ``ts`` strictly increasing; open/high/low/close finite and > 0; volume finite and
    >= 0; ``low <= min(open, close)`` and ``high >= max(open, close)``. NaN fails every
    comparison, so it is caught without a separate test. The API layer locates and names the
    first breach only when this returns False. Reference: ``reference.candles_ok``.
    """
    n = ts.shape[0]
    if n == 0:
        return True
    ok = _candle_ok_nb(open_[0], high[0], low[0], close[0], volume[0])
    for i in range(1, n):
        ok &= _candle_ok_nb(open_[i], high[i], low[i], close[i], volume[i]) & (ts[i] > ts[i - 1])
    return ok


@njit(cache=True)
def median_step_nb(ts: np.ndarray, max_samples: int) -> float:
    """Median of ``ts[j + 1] - ts[j]`` over at most ``max_samples`` evenly spread ``j``.

    Reference: ``reference.median_step``.
    """
    n = ts.shape[0]
    step = max(1, (n - 1) // max_samples)
    m = (n - 2) // step + 1
    if m > 0:  # evenly spaced candles (the usual case): the median is that spacing, no sort
        first = ts[1] - ts[0]
        same = True
        for k in range(1, m):
            same &= ts[k * step + 1] - ts[k * step] == first
        if same:
            return float(first)
    d = np.empty(m)
    for k in range(m):
        j = k * step
        d[k] = ts[j + 1] - ts[j]
    return np.median(d)

"""Input checks the API layer runs before a simulation, as single passes over the arrays."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def candles_ok_nb(
    ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> bool:
    """True when the candles keep the engine's contract, in one branch-free (vectorisable) pass.

    Contract: ``ts`` strictly increasing; open/high/low/close finite and > 0; volume finite and
    >= 0; ``low <= min(open, close)`` and ``high >= max(open, close)``. NaN fails every
    comparison, so it is caught without a separate test. The API layer locates and names the
    first breach only when this returns False. Reference: ``reference.candles_ok``.
    """
    ok = True
    for i in range(1, ts.shape[0]):
        ok &= ts[i] > ts[i - 1]
    for i in range(ts.shape[0]):
        o, h, lo, c, v = open_[i], high[i], low[i], close[i], volume[i]
        ok &= (lo > 0.0) & (h < np.inf) & (v >= 0.0) & (v < np.inf)
        ok &= (h >= o) & (h >= c) & (lo <= o) & (lo <= c)
    return ok


@njit(cache=True)
def median_step_nb(ts: np.ndarray, max_samples: int) -> float:
    """Median of ``ts[j + 1] - ts[j]`` over at most ``max_samples`` evenly spread ``j``.

    Reference: ``reference.median_step``.
    """
    n = ts.shape[0]
    step = max(1, (n - 1) // max_samples)
    m = (n - 2) // step + 1
    d = np.empty(m)
    for k in range(m):
        j = k * step
        d[k] = ts[j + 1] - ts[j]
    return np.median(d)

"""Numba kernels of the backtest engine, over plain arrays only (vectorbt's ``nb`` split).

Nothing here validates, broadcasts or allocates user-facing objects: :mod:`quantdag.backtest.engine`
does that and calls :func:`simulate_nb`. Every public kernel names its plain-Python reference in
``tests/quantdag/backtest/reference.py``, which the property tests use as the oracle.

Reuse
-----
* A parameter-sweep kernel can call :func:`simulate_nb` from an ``@njit(parallel=True)`` loop:
  pass a ``(0, N_MARK_FIELDS)`` ``marks_out`` and a ``(0, N_TRADE_FIELDS)`` ``trades_out``
  to skip recording, and read the summary from ``stats_out``. A specialised
  kernel that re-implements the loop should call :func:`fill_nb`, :func:`entry_size_nb`,
  :func:`stop_exit_nb` and :func:`target_units_nb` so its arithmetic is bit-identical.
* The paper broker prices fills with :func:`fill_nb` (callable from plain Python too) or the
  thin wrapper :func:`quantdag.backtest.costs.fill`.

Bar timeline
------------
Within bar ``i``: (1) with ``fill=next_open``, orders decided at the close of ``i - 1`` fill at
``open[i]``; (2) stops are checked against ``open/high/low[i]``; (3) with ``fill=close``, orders
decided on bar ``i`` fill at ``close[i]``; (4) equity is marked at ``close[i]``.
"""

from quantdag.backtest.nb.checks import candles_ok_nb, median_step_nb
from quantdag.backtest.nb.pricing import (
    MAX_SLIPPAGE,
    entry_size_nb,
    fill_nb,
    fill_price_nb,
    slip_rate_nb,
    stop_exit_nb,
    target_units_nb,
    volatility_slippage_nb,
)
from quantdag.backtest.nb.simulate import expand_marks_nb, simulate_nb

__all__ = [
    "MAX_SLIPPAGE",
    "candles_ok_nb",
    "entry_size_nb",
    "expand_marks_nb",
    "fill_nb",
    "fill_price_nb",
    "median_step_nb",
    "simulate_nb",
    "slip_rate_nb",
    "stop_exit_nb",
    "target_units_nb",
    "volatility_slippage_nb",
]

"""Backtest engine: every strategy, sweep and paper trade is judged by it.

Usage::

    from quantdag.backtest import run
    res = run(candles, entries, exits)                 # next-open fills, 10 bps fee, 5 bps slippage
    res.final_equity, res.equity, res.trades, res.metrics
    res.report("tear_sheet.html")

Layout (after vectorbt): :mod:`~quantdag.backtest.nb` holds the numba kernels over plain arrays
(reused by the sweep kernel), :mod:`~quantdag.backtest.engine` validates and wraps,
:mod:`~quantdag.backtest.costs` exposes the fill/fee model to the paper broker,
:mod:`~quantdag.backtest.metrics` documents every metric's formula.
"""

from quantdag.backtest.costs import Fill, fill, slippage_rate, slippage_rates
from quantdag.backtest.engine import load_market, realised_vol, run, run_targets
from quantdag.backtest.enums import ExitReason
from quantdag.backtest.result import BacktestResult, CandleArrays
from quantdag.backtest.settings import SIZINGS, BacktestSettings

__all__ = [
    "SIZINGS",
    "BacktestResult",
    "BacktestSettings",
    "CandleArrays",
    "ExitReason",
    "Fill",
    "fill",
    "load_market",
    "realised_vol",
    "run",
    "run_targets",
    "slippage_rate",
    "slippage_rates",
]

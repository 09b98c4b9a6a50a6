"""Parameter optimisation: sweeps, grid/random/Bayesian search, walk-forward, overfitting checks.

Usage::

    from quantdag.optimize import sweep, optimize_strategy, walk_forward
    table = sweep(candles, "sma_cross", {"fast": range(5, 105), "slow": range(20, 220, 2)})
    res = optimize_strategy(candles, "sma_cross", search="grid", grid={...}, objective="sharpe")
    res.best, res.dsr, res.pbo, res.heatmap_png("heat.png"), res.summary()
"""

from quantdag.optimize.grid import METRICS, check_metric, expand_grid, sweep
from quantdag.optimize.heatmap import heatmap
from quantdag.optimize.robustness import (
    deflated_sharpe,
    deflated_sharpe_from_returns,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe,
)
from quantdag.optimize.search import OptimizationResult, optimize_strategy, rank_results
from quantdag.optimize.walkforward import WalkForwardResult, walk_forward, windows

__all__ = [
    "METRICS",
    "OptimizationResult",
    "WalkForwardResult",
    "check_metric",
    "deflated_sharpe",
    "deflated_sharpe_from_returns",
    "expand_grid",
    "expected_max_sharpe",
    "heatmap",
    "optimize_strategy",
    "pbo_cscv",
    "probabilistic_sharpe",
    "rank_results",
    "sweep",
    "walk_forward",
    "windows",
]

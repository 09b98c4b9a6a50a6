"""Grid, random and Bayesian (Optuna TPE) search, and :func:`optimize_strategy` for the pipeline."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest import BacktestSettings
from quantdag.backtest.result import CandleArrays
from quantdag.backtest.metrics import returns as equity_returns
from quantdag.errors import ConfigurationError
from quantdag.optimize.grid import (
    MINIMISE,
    check_candles,
    check_metric,
    expand_grid,
    make_settings,
    resolve_strategy,
    sweep_combos,
)
from quantdag.optimize.robustness import DSRResult, PBOResult, deflated_sharpe_from_returns, pbo_cscv
from quantdag.strategies import create_strategy
from quantdag.strategies.base import Strategy

log = logging.getLogger(__name__)


class NoEligibleCombination(ConfigurationError):
    """No combination met ``min_trades`` with a finite objective: nothing can be called best."""

SEARCHES = ("grid", "random", "bayes")


def rank_results(results: pl.DataFrame, objective: str, min_trades: int = 0) -> pl.DataFrame:
    """Rows with ``n_trades >= min_trades`` and a finite objective, best first."""
    ok = results.filter((pl.col("n_trades") >= min_trades) & pl.col(objective).cast(pl.Float64).is_finite())
    return ok.sort(objective, descending=objective not in MINIMISE, maintain_order=True)


@dataclass
class OptimizationResult:
    """Everything an ``optimization`` asset stores (``optimize.sweeps``/``optimize.results``) and logs."""

    strategy: str
    search: str
    objective: str
    min_trades: int
    settings: BacktestSettings
    search_space: dict[str, Any]
    results: pl.DataFrame  # every evaluated combination: params + metrics
    best: dict[str, Any]  # {"params": {...}, "metrics": {...}}
    dsr: DSRResult | None
    pbo: PBOResult | None
    param_names: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """JSON-able run record: what to write to ``optimize.sweeps`` / log to MLflow as params+metrics."""
        return {
            "strategy": self.strategy, "search": self.search, "objective": self.objective,
            "min_trades": self.min_trades, "n_evaluated": self.results.height,
            "search_space": self.search_space, "settings": self.settings.as_dict(),
            "best_params": self.best["params"],
            "best_metrics": {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in self.best["metrics"].items()},
            "dsr": None if self.dsr is None else self.dsr.as_dict(),
            "pbo": None if self.pbo is None else self.pbo.as_dict(),
        }  # fmt: skip

    def heatmap_png(self, path: Any = None, x: str | None = None, y: str | None = None) -> bytes:
        """Parameter-stability heatmap of the objective (chosen point marked); PNG bytes, also
        written to ``path`` if given."""
        from quantdag.optimize.heatmap import heatmap

        names = [n for n in self.param_names if self.results[n].n_unique() > 1]
        if x is None or y is None:
            if len(names) < 2:
                raise ConfigurationError(f"a heatmap needs two varied parameters, got {names}")
            x, y = names[0], names[1]
        return heatmap(self.results, x, y, self.objective, chosen=self.best["params"], path=path)


def _bayes(
    candles: pl.DataFrame,
    market: CandleArrays,
    cls: type[Strategy],
    s: BacktestSettings,
    objective: str,
    min_trades: int,
    n_trials: int,
    seed: int | None,
) -> pl.DataFrame:
    """Optuna's TPE over the strategy's parameter space, one single-combination sweep per trial
    on the already loaded ``market``."""
    import optuna

    space = cls.param_space()
    rows: list[pl.DataFrame] = []
    sign = -1.0 if objective in MINIMISE else 1.0

    def fn(trial: Any) -> float:
        params = space.suggest(trial)
        if space.violations(params):
            raise optuna.TrialPruned()
        row = sweep_combos(candles, cls, [params], s, n_jobs=1, checked=market)
        rows.append(row)
        v = row[objective][0]
        if row["n_trades"][0] < min_trades or v is None or not math.isfinite(float(v)):
            raise optuna.TrialPruned()
        return sign * float(v)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(fn, n_trials=n_trials)
    if not rows:
        raise ConfigurationError(f"{cls.name}: no Optuna trial satisfied the constraints in {n_trials} trials")
    return pl.concat(rows).unique(subset=list(cls.param_defs()), keep="first", maintain_order=True)


@dataclass(frozen=True)
class SweepPlan:
    """A validated search, before any backtest: what :func:`run_plan` evaluates in one process and
    :mod:`quantdag.optimize.shards` splits into shards.

    ``combos`` is the canonical enumeration (the grid in grid order, or the random sample drawn
    once from ``seed``); for ``"bayes"`` it holds only the space's base point, as the trials are
    asked of Optuna as they run.
    """

    cls: type[Strategy]
    search: str
    objective: str
    min_trades: int
    settings: BacktestSettings
    search_space: dict[str, Any]
    combos: list[dict[str, Any]]
    market: CandleArrays
    n_candles: int
    n_trials: int
    seed: int
    pbo_blocks: int
    pbo_max_combos: int
    names: tuple[str, ...]

    def pbo_sample(self, n_results: int | None = None) -> np.ndarray:
        """Indices (into the results, in order) of the combinations whose return series PBO uses:
        at most ``pbo_max_combos``, evenly spread; empty when PBO cannot be measured."""
        n = len(self.combos) if n_results is None else n_results
        if n < 2 or self.n_candles < 2 * self.pbo_blocks:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.linspace(0, n - 1, min(self.pbo_max_combos, n)).round().astype(np.int64))


def plan_sweep(
    candles: pl.DataFrame,
    strategy_name: str,
    *,
    search: str = "grid",
    grid: Mapping[str, Any] | None = None,
    objective: str = "sharpe",
    min_trades: int = 1,
    n_trials: int = 100,
    seed: int = 0,
    pbo_blocks: int = 16,
    pbo_max_combos: int = 200,
    settings: BacktestSettings | None = None,
    fit_history: bool = False,
    **kwargs: Any,
) -> SweepPlan:
    """Validate a search and enumerate its combinations (see :func:`optimize_strategy`).

    Raises
    ------
    ConfigurationError, DataError
        As :func:`optimize_strategy`, all before any backtest.
    """
    if search not in SEARCHES:
        raise ConfigurationError(f"search must be one of {SEARCHES}, got {search!r}")
    check_metric(objective)
    if isinstance(min_trades, bool) or not isinstance(min_trades, int) or min_trades < 0:
        raise ConfigurationError(f"min_trades must be an integer >= 0, got {min_trades!r}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigurationError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    cls = resolve_strategy(strategy_name)
    s = make_settings(settings, **kwargs)
    space = cls.param_space()
    if search == "grid":
        if grid is None:
            grid = {d.name: list(cls.param_defs()[d.name].grid_values()) for d in space.dims}
        combos = expand_grid(cls, grid)
        search_space = {"grid": {k: list(v) if not isinstance(v, (str, int, float)) else [v] for k, v in grid.items()}}
    else:
        if grid is not None:
            space = space.fix(**{k: v for k, v in grid.items() if not isinstance(v, (list, tuple, range))})
        if not space.dims:
            raise ConfigurationError(f"{cls.name}: the search space is empty (no tunable parameter)")
        search_space = {"dims": [d.__dict__ | {"choices": list(d.choices)} for d in space.dims], "fixed": dict(space.fixed),
                        "n_trials": n_trials, "seed": seed}  # fmt: skip
        combos = space.sample(n_trials, seed=seed) if search == "random" else [space._base()]
    if fit_history and search != "bayes":
        fits = [c for c in combos if cls.from_valid(c).startup_candles + 2 <= candles.height]
        if fits and len(fits) < len(combos):
            log.warning("%s: %d of %d combinations need more than the %d candles stored; swept the %d that fit",
                        cls.name, len(combos) - len(fits), len(combos), candles.height, len(fits))
            search_space["dropped_too_long"] = len(combos) - len(fits)
            combos = fits
    market = check_candles(candles, cls, combos, validated=True)
    return SweepPlan(cls, search, objective, min_trades, s, search_space, combos, market, candles.height, n_trials, seed,
                     pbo_blocks, pbo_max_combos, tuple(cls.param_defs()))  # fmt: skip


def optimize_strategy(
    candles: pl.DataFrame,
    strategy_name: str,
    *,
    search: str = "grid",
    grid: Mapping[str, Any] | None = None,
    objective: str = "sharpe",
    min_trades: int = 1,
    n_trials: int = 100,
    seed: int = 0,
    pbo_blocks: int = 16,
    pbo_max_combos: int = 200,
    n_jobs: int | None = None,
    settings: BacktestSettings | None = None,
    fit_history: bool = False,
    **kwargs: Any,
) -> OptimizationResult:
    """Search a strategy's parameters, pick the best by ``objective``, and measure overfitting.

    ``search="grid"`` sweeps ``grid`` (default: the strategy's own search grid); ``"random"``
    samples ``n_trials`` valid sets from the parameter schema (seeded); ``"bayes"`` runs
    ``n_trials`` Optuna TPE trials (constraint violations and ``min_trades`` misses are pruned).
    The DSR uses every evaluated combination as a trial. PBO (CSCV) needs every trial's return
    series: it is computed on at most ``pbo_max_combos`` evenly spread combinations (a sample when
    there are more; ``pbo.n_trials`` says how many), each re-run through the engine.

    ``fit_history=True`` drops the combinations whose warm-up needs more candles than there are
    (logged, and counted as ``search_space["dropped_too_long"]``) instead of refusing the sweep.

    The same search split into shards (:mod:`quantdag.optimize.shards`) merges to this result,
    bit for bit (grid and random search).

    Raises
    ------
    ConfigurationError
        Unknown search, metric, strategy, parameter or setting; empty or infeasible space;
        no combination with ``min_trades`` -- all but the last before any backtest.
    DataError
        Bad candles or too few for the slowest combination.
    """
    plan = plan_sweep(
        candles, strategy_name, search=search, grid=grid, objective=objective, min_trades=min_trades, n_trials=n_trials,
        seed=seed, pbo_blocks=pbo_blocks, pbo_max_combos=pbo_max_combos, settings=settings, fit_history=fit_history,
        **kwargs,
    )  # fmt: skip
    return run_plan(candles, plan, n_jobs=n_jobs)


def run_plan(candles: pl.DataFrame, plan: SweepPlan, *, n_jobs: int | None = None) -> OptimizationResult:
    """Evaluate ``plan`` in this process: the one-shard case of :mod:`quantdag.optimize.shards`
    for grid and random search; Optuna's TPE in memory for ``"bayes"``."""
    if plan.search == "bayes":
        results = _bayes(candles, plan.market, plan.cls, plan.settings, plan.objective, plan.min_trades, plan.n_trials, plan.seed)
        return finish_sweep(candles, plan, results, pbo_blocks=returns_blocks(candles, plan, results, plan.pbo_sample(results.height)))
    from quantdag.optimize.shards import evaluate_shard, merge_shards

    return merge_shards(candles, plan, [evaluate_shard(candles, plan, n_jobs=n_jobs)])


def finish_sweep(candles: pl.DataFrame, plan: SweepPlan, results: pl.DataFrame, *, pbo_blocks: np.ndarray | None) -> OptimizationResult:
    """Rank every evaluated combination, pick the best, and measure overfitting: the DSR from the
    best's return series (one engine run) and every trial's Sharpe, the PBO from ``pbo_blocks``
    (:func:`~quantdag.optimize.robustness.block_stats` of the sampled combinations; None: no PBO).

    Raises
    ------
    NoEligibleCombination
        If no combination has ``min_trades`` trades and a finite objective.
    """
    cls, names = plan.cls, plan.names
    ranked = rank_results(results, plan.objective, plan.min_trades)
    if ranked.height == 0:
        raise NoEligibleCombination(
            f"{cls.name}: none of {results.height} combinations has >= {plan.min_trades} trades and a finite {plan.objective}"
        )
    top = ranked.row(0, named=True)
    best = {"params": {k: top[k] for k in names}, "metrics": {k: v for k, v in top.items() if k not in names}}
    ppy = float(results["periods_per_year"][0])
    trial_sr = results["sharpe"].cast(pl.Float64).to_numpy() / math.sqrt(ppy)
    dsr = deflated_sharpe_from_returns(strategy_returns(candles, cls.name, best["params"], plan.settings), results.height, trial_sr)
    pbo = None if pbo_blocks is None or pbo_blocks.shape[2] == 0 else pbo_cscv(blocks=pbo_blocks, n_blocks=plan.pbo_blocks)
    return OptimizationResult(cls.name, plan.search, plan.objective, plan.min_trades, plan.settings, plan.search_space,
                              results, best, dsr, pbo, names)  # fmt: skip


def strategy_returns(candles: pl.DataFrame, name: str, params: Mapping[str, Any], s: BacktestSettings) -> np.ndarray:
    """Per-candle returns of one parameter set through the engine."""
    from quantdag.optimize.generic import run_strategy

    res = run_strategy(candles, create_strategy(name, params), s)
    return equity_returns(res.equity_array if hasattr(res, "equity_array") else res.equity["equity"].to_numpy(), s.init_cash)


def returns_blocks(candles: pl.DataFrame, plan: SweepPlan, results: pl.DataFrame, rows: np.ndarray) -> np.ndarray:
    """``(3, pbo_blocks, len(rows))``: the block statistics of the return series of ``results``'
    rows ``rows``, each re-run through the engine, one series at a time (no combos x candles matrix)."""
    from quantdag.optimize.robustness import block_stats

    blocks = np.empty((3, plan.pbo_blocks, rows.shape[0]))
    for j, i in enumerate(rows):
        row = results.row(int(i), named=True)
        r = strategy_returns(candles, plan.cls.name, {k: row[k] for k in plan.names}, plan.settings)
        blocks[:, :, j] = block_stats(r[:, None], plan.pbo_blocks)[:, :, 0]
    return blocks

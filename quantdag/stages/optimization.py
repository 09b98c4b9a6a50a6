"""Optimization: sweep a strategy on a market's stored candles and store the sweep.

The sweep itself is :func:`quantdag.optimize.optimize_strategy`; this module picks the search
for the strategy's space, and writes ``optimize.sweeps`` (one row: best parameters with their
deflated Sharpe ratio and PBO) and ``optimize.results`` (every combination) in one transaction.

A sweep can also run as ``n`` shards (:mod:`quantdag.optimize.shards`): :func:`run_sweep_shard`
reads the candles, backtests its share and writes one parquet file under the shard directory
(no warehouse write, so shards overlap on any executor), and :func:`sweep_strategy` with
``shards=n`` merges the files of the current sweep id into exactly the one-process result before
logging and storing it as above. Optuna searches share one study in an RDB storage instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from quantdag.backtest import BacktestSettings
from quantdag.errors import ConfigurationError, DataError
from quantdag.markets import Market
from quantdag.optimize import OptimizationResult
from quantdag.optimize.search import NoEligibleCombination, SweepPlan, plan_sweep, run_plan
from quantdag.optimize.shards import (
    MissingShards,
    ShardMismatch,
    SweepShard,
    check_shards,
    evaluate_shard,
    evaluate_study_shard,
    merge_shards,
    merge_study,
    read_shard,
    sweep_id,
    write_shard,
)
from quantdag.stages.common import StageReport, finite_or_none, read_candles
from quantdag.store import Slice, Warehouse
from quantdag.strategies import create_strategy, get_strategy
from quantdag.strategies.keys import param_set_key
from quantdag.tracking import log_sweep

#: Above this many grid points the sweep samples the space instead of enumerating it (default).
MAX_GRID = 5000


class SweepSkipped(DataError):
    """The stored history is too short for even the fastest combination: there is nothing to sweep yet."""


@dataclass(frozen=True)
class SweepOutcome:
    """A finished sweep of one strategy on one market."""

    market: Market
    result: OptimizationResult
    best_param_set: str
    data_start: Any
    data_end: Any
    sweep_id: str | None = None  # a sharded sweep's id (None: one process)
    shards: tuple[dict[str, Any], ...] = ()  # a sharded sweep's lineage: each shard file's header


#: Searches a configuration may ask for; ``auto`` is the grid up to ``max_grid`` points, else random.
SEARCH_CHOICES = ("auto", "grid", "random", "bayes")


def pick_search(strategy: str, search: str = "auto", max_grid: int = MAX_GRID) -> str:
    """The search a sweep of ``strategy`` runs: ``search``, or for ``auto`` the grid when it has at
    most ``max_grid`` points, else random sampling."""
    if search not in SEARCH_CHOICES:
        raise ConfigurationError(f"search must be one of {SEARCH_CHOICES}, got {search!r}")
    if search != "auto":
        return search
    return "grid" if get_strategy(strategy).param_space().grid_size() <= max_grid else "random"


@contextmanager
def _skippable(strategy: str, market: Market, n_candles: int) -> Iterator[None]:
    """Too little history (or none trading ``min_trades`` times) as :class:`SweepSkipped`."""
    try:
        yield
    except NoEligibleCombination as exc:
        raise SweepSkipped(f"sweep of {strategy} on {market.key} ({n_candles} candles) skipped: {exc}") from exc
    except DataError as exc:
        if "too few" not in str(exc) or isinstance(exc, (MissingShards, ShardMismatch)):
            raise
        raise SweepSkipped(f"sweep of {strategy} on {market.key} skipped: {exc}") from exc


def plan_market_sweep(
    wh: Warehouse,
    strategy: str,
    market: Market,
    *,
    objective: str = "sharpe",
    min_trades: int = 5,
    n_trials: int = 200,
    seed: int = 0,
    max_grid: int = MAX_GRID,
    settings: BacktestSettings | None = None,
    search: str = "auto",
) -> tuple[pl.DataFrame, SweepPlan]:
    """The stored candles of ``market`` and the sweep planned on them (see :func:`run_sweep`).

    Raises
    ------
    SweepSkipped
        No stored candles, or none of the combinations fits the stored history.
    """
    chosen = pick_search(strategy, search, max_grid)
    candles = read_candles(wh, market, peers=create_strategy(strategy).frame_peers)
    if candles.height == 0:
        raise SweepSkipped(f"sweep of {strategy} on {market.key}: no stored candles yet")
    with _skippable(strategy, market, candles.height):
        plan = plan_sweep(
            candles, strategy, search=chosen, objective=objective, min_trades=min_trades, n_trials=n_trials,
            seed=seed, settings=settings, timeframe=market.timeframe, fit_history=True,
        )  # fmt: skip
    return candles, plan


def _outcome(market: Market, candles: pl.DataFrame, result: OptimizationResult, **lineage: Any) -> SweepOutcome:
    best = create_strategy(result.strategy, result.best["params"])
    return SweepOutcome(market, result, param_set_key(best), candles["ts"].min(), candles["ts"].max(), **lineage)


def run_sweep(wh: Warehouse, strategy: str, market: Market, **options: Any) -> SweepOutcome:
    """Sweep ``strategy`` on ``market``'s stored candles in this process: the full grid if small,
    else random search (``search`` and ``max_grid`` choose; see :func:`pick_search`).

    ``options`` are :func:`plan_market_sweep`'s: ``objective``, ``min_trades``, ``n_trials``,
    ``seed``, ``max_grid``, ``settings`` (the backtest's costs, sizing, stops; the market's
    timeframe is set here) and ``search``. Combinations that need more history than is stored
    are left out (and counted in the summary's search space).

    Raises
    ------
    SweepSkipped
        If no combination fits the stored history, or none trades ``min_trades`` times on it.
    """
    candles, plan = plan_market_sweep(wh, strategy, market, **options)
    with _skippable(strategy, market, candles.height):
        result = run_plan(candles, plan)
    return _outcome(market, candles, result)


# ---- shards -------------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def optuna_storage_url(setting: str | None, data_dir: str | Path) -> str:
    """The RDB URL of sharded Optuna searches: ``setting`` (``${VAR}`` read from the environment),
    else a SQLite file ``optuna.db`` in ``data_dir``. A password in it is registered for masking,
    so no log line shows it.

    Raises
    ------
    ConfigurationError
        ``${VAR}`` names an unset variable (named; the value is never shown).
    """
    if setting is None:
        return f"sqlite:///{Path(data_dir).resolve() / 'optuna.db'}"
    ref = _ENV_REF.fullmatch(setting.strip())
    url = setting
    if ref:
        url = os.environ.get(ref.group(1), "")
        if not url:
            raise ConfigurationError(f"optimization.optuna_storage: the environment variable {ref.group(1)} is not set")
    from sqlalchemy.engine import make_url

    from quantdag.exchange.secrets import register_secret

    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 -- sqlalchemy's parse errors vary, and would echo the URL
        raise ConfigurationError("optimization.optuna_storage: not a valid RDB URL") from None
    register_secret(None if password is None else str(password))
    return url


def masked_url(url: str) -> str:
    """``url`` with its password (if any) hidden, for metadata and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def shard_dir_of(directory: str | Path, strategy: str, market: Market, sweep: str) -> Path:
    """Where the shard files of sweep ``sweep`` of ``strategy`` on ``market`` live."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", market.key)
    return Path(directory) / strategy / f"{market.exchange}-{slug}" / sweep


def shard_file(directory: str | Path, strategy: str, market: Market, sweep: str, shard: int, n_shards: int) -> Path:
    return shard_dir_of(directory, strategy, market, sweep) / f"shard-{shard:04d}-of-{n_shards:04d}.parquet"


def study_name(strategy: str, sweep: str) -> str:
    return f"quantdag-{strategy}-{sweep}"


@dataclass(frozen=True)
class ShardOutcome:
    """One shard written: where, of which sweep, how much it evaluated, and how long it took."""

    path: Path
    sweep_id: str
    shard: int
    n_shards: int
    rows: int
    seconds: float
    search: str


def run_sweep_shard(
    wh: Warehouse,
    strategy: str,
    market: Market,
    shard: int,
    n_shards: int,
    directory: str | Path,
    *,
    optuna_storage: str | None = None,
    dagster_run_id: str | None = None,
    **options: Any,
) -> ShardOutcome:
    """Evaluate shard ``shard`` of ``n_shards`` of the sweep :func:`run_sweep` would run, and
    write it under ``directory`` (one parquet file, replaced atomically). Only reads the
    warehouse: ``wh`` may be read-only. ``optuna_storage`` (a URL) is needed for a bayes search.

    Raises
    ------
    SweepSkipped
        As :func:`run_sweep`: the history is too short for the sweep (nothing is written).
    """
    t0 = time.perf_counter()
    check_shards(n_shards)
    candles, plan = plan_market_sweep(wh, strategy, market, **options)
    sweep = sweep_id(plan, candles, n_shards, market=market.key)
    if plan.search == "bayes":
        if optuna_storage is None:
            raise ConfigurationError(f"shard {shard} of a bayes sweep of {strategy} needs an Optuna storage URL")
        part = evaluate_study_shard(candles, plan, shard, n_shards, storage=optuna_storage, study_name=study_name(strategy, sweep))
    else:
        part = evaluate_shard(candles, plan, shard, n_shards)
    seconds = time.perf_counter() - t0
    header = {
        "sweep_id": sweep, "strategy": strategy, "market": market.key, "exchange": market.exchange,
        "search": plan.search, "n_combos": len(plan.combos), "n_candles": candles.height,
        "data_start": candles["ts"].min(), "data_end": candles["ts"].max(), "dagster_run_id": dagster_run_id,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 3),
    }  # fmt: skip
    path = write_shard(part, shard_file(directory, strategy, market, sweep, shard, n_shards), header)
    return ShardOutcome(path, sweep, shard, n_shards, part.results.height, seconds, plan.search)


def _load_shards(directory: str | Path, strategy: str, market: Market, sweep: str, n_shards: int) -> list[SweepShard]:
    """Every shard file of ``sweep``, or :class:`MissingShards` naming each one missing."""
    found, missing = [], []
    for k in range(n_shards):
        path = shard_file(directory, strategy, market, sweep, k, n_shards)
        if not path.exists():
            missing.append(k)
            continue
        part = read_shard(path)
        if part.header.get("sweep_id") != sweep or part.shard != k or part.n_shards != n_shards:
            raise ShardMismatch(f"{path} holds shard {part.shard} of {part.n_shards} of sweep {part.header.get('sweep_id')}")
        found.append(part)
    if missing:
        here = shard_dir_of(directory, strategy, market, sweep)
        others = sorted(p.name for p in here.parent.glob("*") if p.is_dir() and p.name != sweep) if here.parent.is_dir() else []
        hint = f"; shard files of other sweeps (other candles or options) exist: {', '.join(others)}" if others else ""
        raise MissingShards(
            f"sweep of {strategy} on {market.key} (sweep id {sweep}): shard(s) {', '.join(map(str, missing))} of {n_shards} "
            f"missing in {here}: run those shards on the current candles first{hint}",
            missing,
        )  # fmt: skip
    return found


def merge_sweep(
    wh: Warehouse,
    strategy: str,
    market: Market,
    n_shards: int,
    directory: str | Path,
    *,
    optuna_storage: str | None = None,
    **options: Any,
) -> SweepOutcome:
    """The sweep :func:`run_sweep` would give, merged from the ``n_shards`` shard files of the
    current sweep id (the candles as stored now, these options): bit for bit the same for grid
    and random search; for a bayes search, every finished trial of the shared study.

    Raises
    ------
    MissingShards
        A shard of the current sweep has no file (each missing one named).
    ShardMismatch
        A file does not belong where it lies.
    SweepSkipped
        As :func:`run_sweep`.
    """
    candles, plan = plan_market_sweep(wh, strategy, market, **options)
    sweep = sweep_id(plan, candles, n_shards, market=market.key)
    parts = _load_shards(directory, strategy, market, sweep, n_shards)
    with _skippable(strategy, market, candles.height):
        if plan.search == "bayes":
            if optuna_storage is None:
                raise ConfigurationError(f"the merge of a bayes sweep of {strategy} needs the Optuna storage URL")
            result = merge_study(candles, plan, storage=optuna_storage, study_name=study_name(strategy, sweep))
        else:
            result = merge_shards(candles, plan, parts)
    lineage = tuple({k: p.header.get(k) for k in ("shard", "dagster_run_id", "written_at", "rows", "seconds")} for p in parts)
    return _outcome(market, candles, result, sweep_id=sweep, shards=lineage)


def prune_shards(directory: str | Path, strategy: str, market: Market, keep: str) -> list[Path]:
    """Remove the shard folders of ``strategy`` on ``market`` other than sweep ``keep`` whose
    files are all older than ``keep``'s oldest (a newer sweep's shards being written are left)."""
    here = shard_dir_of(directory, strategy, market, keep)
    kept = [p.stat().st_mtime for p in here.glob("*.parquet")]
    if not kept or not here.parent.is_dir():
        return []
    removed = []
    for other in here.parent.iterdir():
        if other.is_dir() and other.name != keep:
            times = [p.stat().st_mtime for p in other.glob("*")]
            if all(t < min(kept) for t in times):
                shutil.rmtree(other, ignore_errors=True)
                removed.append(other)
    return removed


def store_sweep(wh: Warehouse, o: SweepOutcome, *, mlflow_run_id: str | None = None, dagster_run_id: str | None = None) -> StageReport:
    """Replace the market's sweep of this strategy in ``optimize.sweeps`` and ``optimize.results``."""
    t0 = time.perf_counter()
    s = o.result.summary()
    m = o.market
    report = StageReport()
    cls = get_strategy(s["strategy"])
    names = [n for n in o.result.param_names]
    res = o.result.results
    metric_cols = [c for c in res.columns if c not in names]
    rows = []
    for r in res.iter_rows(named=True):
        strat = cls.from_params({n: r[n] for n in names})
        metrics = {c: finite_or_none(r[c]) for c in metric_cols}
        rows.append({
            "strategy": s["strategy"], **m.where, "params_hash": strat.params_hash, "params": strat.params_json,
            "objective": finite_or_none(r.get(s["objective"])), "final_equity": r["final_equity"], "n_trades": r["n_trades"],
            "total_return": metrics.get("total_return"), "sharpe": metrics.get("sharpe"),
            "max_drawdown": metrics.get("max_drawdown"), "metrics": json.dumps(metrics, sort_keys=True),
        })  # fmt: skip
    results = pl.DataFrame(rows, infer_schema_length=None).unique(subset=["params_hash"], keep="first", maintain_order=True)
    sweep = pl.DataFrame([{
        "strategy": s["strategy"], **m.where, "search": s["search"], "objective": s["objective"],
        "min_trades": s["min_trades"], "n_evaluated": s["n_evaluated"], "best_param_set": o.best_param_set,
        "best_params": json.dumps(s["best_params"], sort_keys=True),
        "best_objective": finite_or_none(s["best_metrics"].get(s["objective"])),
        "best_metrics": json.dumps(s["best_metrics"], sort_keys=True),
        "dsr": None if s["dsr"] is None else finite_or_none(s["dsr"]["dsr"]),
        "pbo": None if s["pbo"] is None else finite_or_none(s["pbo"]["pbo"]),
        "search_space": json.dumps(s["search_space"], sort_keys=True, default=str),
        "settings": json.dumps(s["settings"], sort_keys=True), "data_start": o.data_start, "data_end": o.data_end,
        "mlflow_run_id": mlflow_run_id, "dagster_run_id": dagster_run_id,
    }], infer_schema_length=None)  # fmt: skip
    where = Slice(where={"strategy": s["strategy"], **m.where}, time_column=None)
    with wh.transaction() as con:
        report.rows_written += Warehouse.replace(con, "optimize.sweeps", sweep, [where])
        report.rows_written += Warehouse.replace(
            con, "optimize.results", results, [where], order_by=("strategy", "exchange", "symbol", "timeframe", "params_hash")
        )
    report.add(m, combos=results.height)
    report.seconds = time.perf_counter() - t0
    return report


@dataclass(frozen=True)
class SweepStage:
    """What :func:`sweep_strategy` did: the sweep, what it stored, and its tracking run (if any)."""

    outcome: SweepOutcome
    report: StageReport
    run: Any = None


def sweep_strategy(
    wh: Warehouse,
    strategy: str,
    market: Market,
    *,
    start_run: Callable[[str, dict[str, str]], AbstractContextManager[Any]] | None = None,
    top_k: int = 5,
    dagster_run_id: str | None = None,
    shards: int = 1,
    shard_dir: str | Path | None = None,
    optuna_storage: str | None = None,
    **sweep: Any,
) -> SweepStage:
    """The whole stage: :func:`run_sweep` (``sweep`` are its options), log it, store it.

    With ``shards > 1`` the sweep is not run here but merged from its shard files under
    ``shard_dir`` (:func:`merge_sweep`); the tracking run is tagged with the sweep id and the
    Dagster run of each shard, and older sweeps' shard folders are removed once stored.

    ``start_run(name, tags)`` opens the parent tracking run (``sweep <strategy> · <SYMBOL:TF>``),
    which gets the summary and artifacts, and the ``top_k`` best combinations as nested runs.

    Raises
    ------
    SweepSkipped
        If the stored history is too short for the sweep (nothing is logged or stored).
    MissingShards
        ``shards > 1`` and a shard of the current sweep has not run (named).
    """
    if check_shards(shards) > 1:
        if shard_dir is None:
            raise ConfigurationError(f"a sweep of {strategy} in {shards} shards needs the shard directory")
        outcome = merge_sweep(wh, strategy, market, shards, shard_dir, optuna_storage=optuna_storage, **sweep)
    else:
        outcome = run_sweep(wh, strategy, market, **sweep)
    run = None
    if start_run is not None:
        tags = {"strategy": strategy, "market": market.key}
        if outcome.sweep_id is not None:
            tags["sweep_id"] = outcome.sweep_id
            tags["sweep_shards"] = json.dumps([{"shard": p["shard"], "dagster_run_id": p["dagster_run_id"]} for p in outcome.shards])
        with start_run(f"sweep {strategy} · {market.key}", tags) as run:
            log_sweep(outcome, top_k=top_k)
    report = store_sweep(wh, outcome, mlflow_run_id=run.info.run_id if run is not None else None, dagster_run_id=dagster_run_id)
    if outcome.sweep_id is not None and shard_dir is not None:
        prune_shards(shard_dir, strategy, market, outcome.sweep_id)
    return SweepStage(outcome, report, run)

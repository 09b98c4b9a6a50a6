"""A sweep split into shards that run anywhere, and their deterministic merge.

Grid and random search
----------------------
The plan (:func:`~quantdag.optimize.search.plan_sweep`) enumerates the combinations once, in
canonical order (the grid in grid order; the random sample drawn once from the seed). Shard
``k`` of ``n`` evaluates the combinations whose index ``i`` has ``i % n == k`` (round-robin, so
cheap and expensive corners of a grid spread evenly), and, of the combinations PBO samples
(:meth:`~quantdag.optimize.search.SweepPlan.pbo_sample`), the return-series block statistics of
those it owns. The merge puts the rows back in index order, gathers the block statistics in
sample order and ranks, so a sharded sweep equals the one-process sweep bit for bit: every
combination is one independent backtest whatever else runs beside it, and everything computed
over all combinations (ranking, DSR, PBO) is computed once, at the merge, on the same arrays.
:func:`~quantdag.optimize.search.optimize_strategy` is itself the one-shard case.

Bayesian search (Optuna)
------------------------
The shards share one study in an RDB storage (a SQLite file, or PostgreSQL for many machines):
each runs its share of ``n_trials`` with its own TPE seed (``seed + shard``, constant liar), so
parallel workers see each other's trials; every evaluated trial keeps its metrics and block
statistics as user attributes, and the merge reads every finished trial of the study. The
trials' order depends on timing: a sharded Optuna search is *not* reproducible bit for bit (a
one-process search with a seed is). A re-run shard only tops its own trials up to its share, so
a crashed shard resumes instead of doubling its trials.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, DataError
from quantdag.optimize.grid import MINIMISE, sweep_combos
from quantdag.optimize.robustness import block_stats
from quantdag.optimize.search import (
    OptimizationResult,
    SweepPlan,
    finish_sweep,
    returns_blocks,
    strategy_returns,
)

log = logging.getLogger(__name__)

#: Bumped when what a shard stores changes: older shard files then belong to another sweep id.
FORMAT = 1
#: The parquet key-value metadata entry holding a shard's header (JSON).
HEADER_KEY = "quantdag.sweep_shard"
#: Column of a shard's results holding each row's combination index (trial number for Optuna).
COMBO = "combo"
#: Column of a shard's results holding the PBO block statistics of the sampled rows (else null).
BLOCKS = "pbo_blocks"
#: Optuna user attributes of a trial evaluated by a shard.
ATTR_SHARD, ATTR_ROW, ATTR_BLOCKS = "quantdag.shard", "quantdag.row", "quantdag.pbo_blocks"


class ShardError(DataError):
    """The shards of a sweep cannot be merged into the one-process result."""


class MissingShards(ShardError):
    """Some shards of the sweep have no output (never run, failed, or computed on other data or options)."""

    def __init__(self, message: str, missing: Sequence[int]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


class ShardMismatch(ShardError):
    """The shards given do not partition this sweep (another plan, a duplicate, a gap in the combinations)."""


def check_shards(n_shards: Any) -> int:
    """``n_shards`` if it is an integer >= 1, else :class:`ConfigurationError`."""
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise ConfigurationError(f"the number of shards must be an integer >= 1, got {n_shards!r}")
    return n_shards


def shard_indices(n_combos: int, shard: int, n_shards: int) -> np.ndarray:
    """Indices of the combinations shard ``shard`` of ``n_shards`` evaluates: ``i % n_shards == shard``."""
    check_shards(n_shards)
    if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < n_shards:
        raise ConfigurationError(f"shard must be an integer in [0, {n_shards}), got {shard!r}")
    return np.arange(shard, n_combos, n_shards, dtype=np.int64)


def trials_of_shard(n_trials: int, shard: int, n_shards: int) -> int:
    """Shard ``shard``'s share of an Optuna search's ``n_trials`` (the shares sum to ``n_trials``)."""
    return n_trials // n_shards + (1 if shard < n_trials % n_shards else 0)


def candles_digest(candles: pl.DataFrame) -> str:
    """SHA-256 of the candles a sweep reads (time and OHLCV, as stored): shards of other data differ."""
    h = hashlib.sha256()
    for name in ("ts", "open", "high", "low", "close", "volume"):
        col = candles[name]
        if name == "ts":
            col = col.dt.epoch("ms") if col.dtype.is_temporal() else col.cast(pl.Int64)
        h.update(name.encode())
        h.update(np.ascontiguousarray(col.to_numpy()).tobytes())
    return h.hexdigest()


def sweep_id(plan: SweepPlan, candles: pl.DataFrame, n_shards: int, *, market: str = "") -> str:
    """The identity of a sharded sweep: 16 hex digits over everything its shards' outputs depend on
    (strategy, market, candles, search and its space, backtest settings, PBO sampling, the number of
    shards; for Optuna also the objective, ``min_trades``, ``n_trials`` and seed). Shards of one
    sweep id merge; any other is refused."""
    key = {
        "format": FORMAT, "strategy": plan.cls.name, "market": market, "candles": candles_digest(candles),
        "search": plan.search, "search_space": plan.search_space, "settings": plan.settings.as_dict(),
        "n_combos": len(plan.combos), "pbo_blocks": plan.pbo_blocks, "pbo_max_combos": plan.pbo_max_combos,
        "n_shards": check_shards(n_shards),
    }  # fmt: skip
    if plan.search == "bayes":
        key.update(objective=plan.objective, min_trades=plan.min_trades, n_trials=plan.n_trials, seed=plan.seed)
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepShard:
    """What one shard evaluated: every row it owns, with the block statistics PBO needs of them.

    ``results`` holds the combination index (:data:`COMBO`), the parameters and the engine's
    metrics, in index order; :data:`BLOCKS` holds, for the rows PBO samples, the ``(3, n_blocks)``
    block statistics flattened (null elsewhere).
    """

    shard: int
    n_shards: int
    results: pl.DataFrame
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def combos(self) -> np.ndarray:
        return self.results[COMBO].to_numpy() if self.results.height else np.empty(0, dtype=np.int64)


def _with_blocks(results: pl.DataFrame, index: np.ndarray, blocks: dict[int, np.ndarray]) -> pl.DataFrame:
    column = pl.Series(BLOCKS, [blocks[int(i)].ravel().tolist() if int(i) in blocks else None for i in index],
                       dtype=pl.List(pl.Float64))  # fmt: skip
    return results.with_columns(pl.Series(COMBO, index, dtype=pl.Int64), column).select(COMBO, *results.columns, BLOCKS)


def evaluate_shard(
    candles: pl.DataFrame, plan: SweepPlan, shard: int = 0, n_shards: int = 1, *, n_jobs: int | None = None
) -> SweepShard:
    """Backtest shard ``shard`` of ``n_shards`` of a grid or random search (see the module docstring).

    Raises
    ------
    ConfigurationError
        A Bayesian plan (use :func:`evaluate_study_shard`) or a bad shard number.
    """
    if plan.search == "bayes":
        raise ConfigurationError("an Optuna search shards through a shared study: use evaluate_study_shard")
    index = shard_indices(len(plan.combos), shard, n_shards)
    if index.shape[0] == 0:  # more shards than combinations: an empty shard still says it ran
        return SweepShard(shard, n_shards, pl.DataFrame({COMBO: pl.Series([], dtype=pl.Int64)}))
    results = sweep_combos(candles, plan.cls, [plan.combos[int(i)] for i in index], plan.settings, n_jobs=n_jobs,
                           checked=plan.market)  # fmt: skip
    sample = plan.pbo_sample()
    mine = sample[sample % n_shards == shard]
    local = (mine - shard) // n_shards  # row of each sampled combination in this shard's results
    blocks = returns_blocks(candles, plan, results, local)
    return SweepShard(shard, n_shards, _with_blocks(results, index, {int(i): blocks[:, :, j] for j, i in enumerate(mine)}))


def _gather(shards: Sequence[SweepShard], what: str) -> list[SweepShard]:
    """The shards ordered by number, checked to be exactly ``0 .. n-1`` of one ``n``."""
    if not shards:
        raise MissingShards(f"{what}: no shard to merge", [])
    counts = {s.n_shards for s in shards}
    if len(counts) != 1:
        raise ShardMismatch(f"{what}: shards of different splits ({sorted(counts)} shards) cannot be merged")
    n = counts.pop()
    numbers = [s.shard for s in shards]
    dupes = sorted({k for k in numbers if numbers.count(k) > 1})
    if dupes:
        raise ShardMismatch(f"{what}: shard(s) {dupes} given twice")
    missing = sorted(set(range(n)) - set(numbers))
    if missing:
        raise MissingShards(f"{what}: shard(s) {', '.join(map(str, missing))} of {n} missing", missing)
    return sorted(shards, key=lambda s: s.shard)


def merge_shards(candles: pl.DataFrame, plan: SweepPlan, shards: Sequence[SweepShard]) -> OptimizationResult:
    """The one-process result of ``plan`` from its shards, given in any order.

    Raises
    ------
    MissingShards
        A shard number of ``0 .. n-1`` is not among ``shards`` (named).
    ShardMismatch
        Shards of different splits, a shard twice, or rows that do not cover the plan's
        combinations exactly once (shards of another plan).
    NoEligibleCombination
        As :func:`~quantdag.optimize.search.finish_sweep`.
    """
    what = f"sweep of {plan.cls.name}"
    ordered = _gather(shards, what)
    parts = [s.results for s in ordered if s.results.height]
    merged = pl.concat(parts, how="vertical_relaxed").sort(COMBO) if len(parts) > 1 else parts[0]
    combos = merged[COMBO].to_numpy()
    if combos.shape[0] != len(plan.combos) or not np.array_equal(combos, np.arange(len(plan.combos))):
        raise ShardMismatch(f"{what}: the shards hold {combos.shape[0]} rows, not each of the plan's {len(plan.combos)} "
                            "combinations once (shards of another plan?)")  # fmt: skip
    sample = plan.pbo_sample()
    blocks = np.empty((3, plan.pbo_blocks, sample.shape[0]))
    stored = merged[BLOCKS]
    for j, i in enumerate(sample):
        b = stored[int(i)]
        if b is None or len(b) != 3 * plan.pbo_blocks:
            raise ShardMismatch(f"{what}: combination {int(i)} lacks the block statistics PBO needs (shards of another plan?)")
        blocks[:, :, j] = b.to_numpy().reshape(3, plan.pbo_blocks)
    return finish_sweep(candles, plan, merged.drop(COMBO, BLOCKS), pbo_blocks=blocks)


# ---- files ------------------------------------------------------------------------------------


def write_shard(shard: SweepShard, path: str | Path, header: dict[str, Any]) -> Path:
    """Write ``shard`` to ``path`` (parquet, the JSON ``header`` in its metadata), atomically:
    a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {**header, "shard": shard.shard, "n_shards": shard.n_shards, "rows": shard.results.height, "format": FORMAT}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        shard.results.write_parquet(tmp, metadata={HEADER_KEY: json.dumps(head, sort_keys=True, default=str)})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_header(path: str | Path) -> dict[str, Any]:
    """A shard file's header (sweep id, shard, run that wrote it, ...)."""
    try:
        return json.loads(pl.read_parquet_metadata(path)[HEADER_KEY])
    except (OSError, KeyError, ValueError) as exc:
        raise ShardMismatch(f"{path} is not a sweep shard file ({exc})") from exc


def read_shard(path: str | Path) -> SweepShard:
    """A shard written by :func:`write_shard`."""
    header = read_header(path)
    return SweepShard(int(header["shard"]), int(header["n_shards"]), pl.read_parquet(path), header)


# ---- Optuna: one study shared by every shard ------------------------------------------------------


def rdb_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url`` (SQLite waits for the file's lock rather than failing at once).

    Several shards creating the same new storage at once can race on its tables; a few retries settle it.
    """
    import optuna
    import sqlalchemy.exc

    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except sqlalchemy.exc.OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def _study(plan: SweepPlan, storage: Any, study_name: str, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    return optuna.create_study(storage=storage, study_name=study_name, direction="maximize", sampler=sampler,
                               load_if_exists=True)  # fmt: skip


def _finished(study: Any) -> list[Any]:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sorted(study.get_trials(deepcopy=False, states=states), key=lambda t: t.number)


def evaluate_study_shard(
    candles: pl.DataFrame, plan: SweepPlan, shard: int, n_shards: int, *, storage: Any, study_name: str
) -> SweepShard:
    """Run shard ``shard``'s share of an Optuna search's trials in the shared study ``study_name``.

    Trials of this shard already finished in the study count (a re-run resumes). Each evaluated
    trial stores its row of metrics and the block statistics of its return series, so the merge
    reads everything from the study. Returns the rows of this shard's trials (``combo`` = trial number).
    """
    import optuna

    if plan.search != "bayes":
        raise ConfigurationError(f"a shared study is for Optuna searches, not {plan.search!r}")
    shard_indices(0, shard, n_shards)  # validates the numbers
    if isinstance(storage, str):
        storage = rdb_storage(storage)
    study = _study(plan, storage, study_name, plan.seed + shard)
    done = sum(1 for t in _finished(study) if t.user_attrs.get(ATTR_SHARD) == shard)
    todo = trials_of_shard(plan.n_trials, shard, n_shards) - done
    space = plan.cls.param_space()
    sign = -1.0 if plan.objective in MINIMISE else 1.0
    with_blocks = plan.n_candles >= 2 * plan.pbo_blocks

    def fn(trial: Any) -> float:
        trial.set_user_attr(ATTR_SHARD, shard)
        params = space.suggest(trial)
        if space.violations(params):
            raise optuna.TrialPruned()
        row = sweep_combos(candles, plan.cls, [params], plan.settings, n_jobs=1, checked=plan.market).row(0, named=True)
        trial.set_user_attr(ATTR_ROW, row)
        if with_blocks:
            r = strategy_returns(candles, plan.cls.name, {k: row[k] for k in plan.names}, plan.settings)
            trial.set_user_attr(ATTR_BLOCKS, block_stats(r[:, None], plan.pbo_blocks)[:, :, 0].ravel().tolist())
        v = row[plan.objective]
        if row["n_trades"] < plan.min_trades or v is None or not math.isfinite(float(v)):
            raise optuna.TrialPruned()
        return sign * float(v)

    if todo > 0:
        study.optimize(fn, n_trials=todo)
    rows = [{COMBO: t.number, **t.user_attrs[ATTR_ROW]} for t in _finished(study)
            if t.user_attrs.get(ATTR_SHARD) == shard and ATTR_ROW in t.user_attrs]  # fmt: skip
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame({COMBO: pl.Series([], dtype=pl.Int64)})
    return SweepShard(shard, n_shards, frame)


def merge_study(candles: pl.DataFrame, plan: SweepPlan, *, storage: Any, study_name: str) -> OptimizationResult:
    """The result of an Optuna search from every finished trial of its shared study, in trial order
    (a parameter set tried twice counts once, its first trial); PBO from the trials' stored block
    statistics, the DSR from the best's return series.

    Raises
    ------
    MissingShards
        If the study does not exist or holds no evaluated trial.
    """
    import optuna

    if isinstance(storage, str):
        storage = rdb_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as exc:
        raise MissingShards(f"sweep of {plan.cls.name}: no Optuna study {study_name!r} in the storage (no shard ran)", []) from exc
    trials = [t for t in _finished(study) if ATTR_ROW in t.user_attrs]
    if not trials:
        raise MissingShards(f"sweep of {plan.cls.name}: the study {study_name!r} holds no evaluated trial", [])
    frame = pl.DataFrame([t.user_attrs[ATTR_ROW] for t in trials], infer_schema_length=None)
    keep = frame.select(pl.struct(*plan.names).is_first_distinct()).to_series().to_list()
    results = frame.filter(pl.Series(keep))
    kept = [t for t, k in zip(trials, keep, strict=True) if k]
    sample = plan.pbo_sample(results.height)
    blocks = np.empty((3, plan.pbo_blocks, sample.shape[0]))
    for j, i in enumerate(sample):
        b = kept[int(i)].user_attrs.get(ATTR_BLOCKS)
        if b is None:  # a trial evaluated before block statistics were kept: run it again
            b = returns_blocks(candles, plan, results, np.array([i]))[:, :, 0]
        blocks[:, :, j] = np.asarray(b, dtype=np.float64).reshape(3, plan.pbo_blocks)
    return finish_sweep(candles, plan, results, pbo_blocks=blocks)


def study_trials(storage: Any, study_name: str) -> list[Any]:
    """Every finished trial of a shared study, in trial order (for lineage and tests)."""
    import optuna

    if isinstance(storage, str):
        storage = rdb_storage(storage)
    return _finished(optuna.load_study(study_name=study_name, storage=storage))


__all__ = [
    "MissingShards", "ShardError", "ShardMismatch", "SweepShard", "candles_digest", "check_shards", "evaluate_shard",
    "evaluate_study_shard", "merge_shards", "merge_study", "read_header", "read_shard", "shard_indices", "study_trials",
    "sweep_id", "trials_of_shard", "write_shard",
]

"""Optimization: one partition per strategy, swept on the configured market (or merged from its shards)."""

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from assets.common import DUCKDB_POOL, mlflow_run_link, report_metadata, retry_transient
from assets.partitions import Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.optimization import (
    SweepSkipped,
    masked_url,
    optuna_storage_url,
    run_sweep_shard,
    sweep_strategy,
)
from resources import ExchangeResource, MlflowResource, WarehouseResource

EXPERIMENT = "optimization"
#: Folder of the data dir holding the shard files of sharded sweeps (a shared volume when shards run on many machines).
SHARD_FOLDER = "sweep_shards"


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``optimization`` (and ``sweep_shards`` when ``optimization.shards`` > 1): run config defaults from the file."""
    o = config.optimization
    sharded = parts.sweep_shards is not None

    class SweepOptions(dg.Config):
        """What to optimise; defaults are the configuration file's (costs on, a minimum trade count).
        A sharded sweep's shards and its merge must be given the same values."""

        objective: str = o.objective
        min_trades: int = o.min_trades
        n_trials: int = o.n_trials
        seed: int = o.seed

    class SweepConfig(SweepOptions):
        top_k: int = o.top_k

    def options(cfg: SweepOptions) -> dict:
        return dict(objective=cfg.objective, min_trades=cfg.min_trades, n_trials=cfg.n_trials, seed=cfg.seed,
                    max_grid=o.max_grid, search=o.search, settings=project.backtest_settings())  # fmt: skip

    def data_dir(warehouse: WarehouseResource) -> Path:
        return Path(warehouse.path).parent

    def storage(warehouse: WarehouseResource) -> str | None:
        return optuna_storage_url(o.optuna_storage, data_dir(warehouse)) if o.search == "bayes" else None

    deps = [dg.AssetDep("candles", partition_mapping=dg.AllPartitionMapping())]
    if sharded:
        deps.append(dg.AssetDep("sweep_shards", partition_mapping=dg.MultiToSingleDimensionPartitionMapping("strategy")))

    @dg.asset(
        partitions_def=parts.strategies,
        group_name="optimization",
        pool=DUCKDB_POOL,
        deps=deps,
        kinds={"duckdb", "mlflow", "numba"},
        metadata={"table": "optimize.sweeps", "also_writes": "optimize.results", "shards": o.shards},
        output_required=False,
    )
    def optimization(
        context: dg.AssetExecutionContext,
        config: SweepConfig,
        warehouse: WarehouseResource,
        exchange: ExchangeResource,
        mlflow: MlflowResource,
    ) -> Iterator[dg.MaterializeResult]:
        """A parameter sweep (or the merge of its shards) with its deflated Sharpe ratio and PBO; best parameters ready to promote."""
        market = project.optimization_market.on(exchange.venue)
        try:
            done = sweep_strategy(
                warehouse.get(), context.partition_key, market, top_k=config.top_k, dagster_run_id=context.run_id,
                shards=o.shards, shard_dir=data_dir(warehouse) / SHARD_FOLDER if sharded else None,
                optuna_storage=storage(warehouse) if sharded else None, **options(config),
                start_run=lambda name, tags: mlflow.start_run(context, EXPERIMENT, run_name=name, tags=tags),
            )  # fmt: skip
        except SweepSkipped as exc:  # too little history yet: no materialization, the reason in the log
            context.log.warning(str(exc))
            return
        outcome, report, run = done.outcome, done.report, done.run
        s = outcome.result.summary()
        meta = dict(report_metadata(report))
        meta.update({
            "market": dg.MetadataValue.text(market.key),
            "best_param_set": dg.MetadataValue.text(outcome.best_param_set),
            "best_params": dg.MetadataValue.json(s["best_params"]),
            "best_objective": dg.MetadataValue.float(float(s["best_metrics"].get(config.objective) or float("nan"))),
            "dsr": dg.MetadataValue.float(float(s["dsr"]["dsr"]) if s["dsr"] else float("nan")),
            "pbo": dg.MetadataValue.float(float(s["pbo"]["pbo"]) if s["pbo"] else float("nan")),
            "n_evaluated": dg.MetadataValue.int(s["n_evaluated"]),
            "search": dg.MetadataValue.text(s["search"]),
            "mlflow_run": mlflow_run_link(run.info.experiment_id, run.info.run_id),
            "search_space": dg.MetadataValue.json(json.loads(json.dumps(s["search_space"], default=str))),
        })  # fmt: skip
        if outcome.sweep_id is not None:  # lineage: the shard runs this merge used
            meta["sweep_id"] = dg.MetadataValue.text(outcome.sweep_id)
            meta["shards"] = dg.MetadataValue.json(json.loads(json.dumps(list(outcome.shards), default=str)))
        yield dg.MaterializeResult(metadata=meta)

    project = config
    if not sharded:
        return [optimization]

    @dg.asset(
        partitions_def=parts.sweep_shards,
        group_name="optimization_shards",
        deps=[dg.AssetDep("candles", partition_mapping=dg.AllPartitionMapping())],
        kinds={"parquet", "numba"},
        metadata={"writes": f"<data_dir>/{SHARD_FOLDER}/<strategy>/<market>/<sweep id>/shard-<k>-of-<n>.parquet"},
        output_required=False,
    )
    def sweep_shards(
        context: dg.AssetExecutionContext, config: SweepOptions, warehouse: WarehouseResource, exchange: ExchangeResource
    ) -> Iterator[dg.MaterializeResult]:
        """One shard of a strategy's sweep: its share of the backtests as a parquet file (reads DuckDB, never writes it: no pool)."""
        strategy, shard = parts.sweep_shard(context.partition_key)
        market = project.optimization_market.on(exchange.venue)
        url = storage(warehouse)
        try:
            with retry_transient():  # a writer holding the DuckDB file too long: retried
                done = run_sweep_shard(
                    warehouse.get(read_only=True), strategy, market, shard, o.shards, data_dir(warehouse) / SHARD_FOLDER,
                    optuna_storage=url, dagster_run_id=context.run_id, **options(config),
                )  # fmt: skip
        except SweepSkipped as exc:
            context.log.warning(str(exc))
            return
        meta = {
            "market": dg.MetadataValue.text(market.key), "sweep_id": dg.MetadataValue.text(done.sweep_id),
            "shard": dg.MetadataValue.int(done.shard), "n_shards": dg.MetadataValue.int(done.n_shards),
            "rows": dg.MetadataValue.int(done.rows), "seconds": dg.MetadataValue.float(round(done.seconds, 3)),
            "search": dg.MetadataValue.text(done.search), "path": dg.MetadataValue.path(str(done.path)),
        }  # fmt: skip
        if url is not None:
            meta["optuna_storage"] = dg.MetadataValue.text(masked_url(url))
        yield dg.MaterializeResult(metadata=meta)

    return [optimization, sweep_shards]

"""Optimization: one partition per strategy, swept on the configured market."""

import json
from collections.abc import Iterator

import dagster as dg

from assets.common import DUCKDB_POOL, mlflow_run_link, report_metadata
from assets.partitions import Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.optimization import SweepSkipped, sweep_strategy
from resources import ExchangeResource, MlflowResource, WarehouseResource

EXPERIMENT = "optimization"


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``optimization``: its run config defaults come from the file's ``optimization`` section."""
    o = config.optimization

    class SweepConfig(dg.Config):
        """What to optimise; defaults are the configuration file's (costs on, a minimum trade count)."""

        objective: str = o.objective
        min_trades: int = o.min_trades
        n_trials: int = o.n_trials
        seed: int = o.seed
        top_k: int = o.top_k

    @dg.asset(
        partitions_def=parts.strategies,
        group_name="optimization",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("candles", partition_mapping=dg.AllPartitionMapping())],
        kinds={"duckdb", "mlflow", "numba"},
        metadata={"table": "optimize.sweeps", "also_writes": "optimize.results"},
        output_required=False,
    )
    def optimization(
        context: dg.AssetExecutionContext,
        config: SweepConfig,
        warehouse: WarehouseResource,
        exchange: ExchangeResource,
        mlflow: MlflowResource,
    ) -> Iterator[dg.MaterializeResult]:
        """A parameter sweep with its deflated Sharpe ratio and PBO; best parameters ready to promote."""
        market = project.optimization_market.on(exchange.venue)
        try:
            done = sweep_strategy(
                warehouse.get(), context.partition_key, market, objective=config.objective, min_trades=config.min_trades,
                n_trials=config.n_trials, seed=config.seed, max_grid=o.max_grid, settings=project.backtest_settings(),
                top_k=config.top_k, dagster_run_id=context.run_id,
                start_run=lambda name, tags: mlflow.start_run(context, EXPERIMENT, run_name=name, tags=tags),
            )
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
        yield dg.MaterializeResult(metadata=meta)

    project = config
    return [optimization]

"""Optimization: one partition per strategy, swept on the primary research market."""

import json

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata
from assets.market_data import candles
from assets.partitions import strategies
from assets.signals import research_markets
from quantdag.stages.optimization import run_sweep, store_sweep
from quantdag.tracking import log_sweep
from resources import ExchangeResource, MlflowResource, WarehouseResource

EXPERIMENT = "optimization"


class SweepConfig(dg.Config):
    """What to optimise; defaults are the honest ones (costs on, a minimum trade count)."""

    objective: str = "sharpe"
    min_trades: int = 5
    n_trials: int = 200
    seed: int = 0
    top_k: int = 5


@dg.asset(
    partitions_def=strategies,
    group_name="optimization",
    pool=DUCKDB_POOL,
    deps=[dg.AssetDep(candles, partition_mapping=dg.AllPartitionMapping())],
    kinds={"duckdb", "mlflow", "numba"},
    metadata={"table": "optimize.sweeps", "also_writes": "optimize.results"},
)
def optimization(
    context: dg.AssetExecutionContext,
    config: SweepConfig,
    warehouse: WarehouseResource,
    exchange: ExchangeResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """A parameter sweep with its deflated Sharpe ratio and PBO; best parameters ready to promote."""
    market = research_markets(exchange.venue)[0]
    wh = warehouse.get()
    outcome = run_sweep(wh, context.partition_key, market, objective=config.objective, min_trades=config.min_trades,
                        n_trials=config.n_trials, seed=config.seed)
    with mlflow.start_run(context, EXPERIMENT, run_name=f"sweep {context.partition_key} {market.symbol} {market.timeframe}",
                          tags={"strategy": context.partition_key}) as run:
        log_sweep(outcome, top_k=config.top_k)
    report = store_sweep(wh, outcome, mlflow_run_id=run.info.run_id, dagster_run_id=context.run_id)
    s = outcome.result.summary()
    meta = dict(report_metadata(report))
    meta.update({
        "best_param_set": dg.MetadataValue.text(outcome.best_param_set),
        "best_params": dg.MetadataValue.json(s["best_params"]),
        "best_objective": dg.MetadataValue.float(float(s["best_metrics"].get(config.objective) or float("nan"))),
        "dsr": dg.MetadataValue.float(float(s["dsr"]["dsr"]) if s["dsr"] else float("nan")),
        "pbo": dg.MetadataValue.float(float(s["pbo"]["pbo"]) if s["pbo"] else float("nan")),
        "n_evaluated": dg.MetadataValue.int(s["n_evaluated"]),
        "search": dg.MetadataValue.text(s["search"]),
        "mlflow_run_id": dg.MetadataValue.text(run.info.run_id),
        "search_space": dg.MetadataValue.json(json.loads(json.dumps(s["search_space"], default=str))),
    })  # fmt: skip
    return dg.MaterializeResult(metadata=meta)

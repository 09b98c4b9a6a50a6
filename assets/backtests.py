"""Backtests: each parameter set's signals through the engine, stored and logged to MLflow; a run may
cover many parameter sets (a single-run backfill: one process, one connection, one MLflow run per backtest)."""

import io
import json

import dagster as dg

from assets.common import DUCKDB_POOL, metrics_table, mlflow_experiment_link, mlflow_run_link, report_metadata
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.backtests import BACKTEST_CHECKS, backtest_param_sets
from resources import ExchangeResource, MlflowResource, WarehouseResource

EXPERIMENT = "backtests"


def _equity_chart(outcomes) -> str:
    """A small PNG of every market's equity curve, inline in markdown."""
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=90)
    for o in outcomes:
        eq = o.result.equity
        ax.plot(eq["ts"].to_list(), eq["equity"].to_list(), label=o.market.key, lw=1)
    ax.set_ylabel("equity")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return f"![equity](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``backtests`` of a parameter set with the configuration's backtest settings."""

    @dg.asset(
        partitions_def=parts.param_sets,
        backfill_policy=SINGLE_RUN,
        group_name="backtests",
        pool=DUCKDB_POOL,
        deps=["signals"],
        kinds={"duckdb", "mlflow", "numba"},
        metadata={"table": "backtest.runs", "also_writes": "backtest.trades, backtest.equity"},
        check_specs=[
            dg.AssetCheckSpec(name, asset="backtests", description=desc, blocking=True)
            for name, desc in BACKTEST_CHECKS.items()
        ],
    )
    def backtests(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        exchange: ExchangeResource,
        mlflow: MlflowResource,
    ) -> dg.MaterializeResult:
        """Backtest of each parameter set of the run on every research market, next-open fills, costs on."""
        markets = [m.on(exchange.venue) for m in config.research_markets]
        keys = context.partition_keys
        batch = backtest_param_sets(
            warehouse.get(), keys, markets, settings=config.backtest_settings(),
            accept_holes=config.universe.accept_holes, dagster_run_id=context.run_id,
            start_run=lambda name, tags: mlflow.start_run(
                context, EXPERIMENT, run_name=name, tags={**tags, "dagster_partition": tags["param_set"]}
            ),
        )
        check_results = [
            dg.AssetCheckResult(check_name=name, passed=v.passed, severity=dg.AssetCheckSeverity.ERROR, metadata=v.metadata)
            for name, v in batch.checks.items()
        ]
        done = batch.stages
        meta = dict(report_metadata(batch.report))
        experiment_id = mlflow.experiment_id(EXPERIMENT)
        meta["metrics"] = metrics_table(
            {f"{k} {o.market.key}": {**o.result.metrics, "mlflow_run_id": d.run_ids.get(o.market.key)}
             for k, d in done.items() for o in d.outcomes},
            ("total_return", "sharpe", "max_drawdown", "n_trades", "mlflow_run_id"),
        )  # fmt: skip
        if len(done) == 1:  # one parameter set: its runs as links and its equity curves as a chart
            (d,) = done.values()
            meta.update({f"mlflow_run {m}": mlflow_run_link(experiment_id, r) for m, r in d.run_ids.items()})
            meta["params"] = dg.MetadataValue.json(json.loads(d.strategy.params_json))
            if d.outcomes:
                meta["equity_chart"] = dg.MetadataValue.md(_equity_chart(d.outcomes))
        else:
            meta["param_sets"] = dg.MetadataValue.int(len(done))
            meta["mlflow_experiment"] = mlflow_experiment_link(experiment_id)
        return dg.MaterializeResult(metadata=meta, check_results=check_results)

    return [backtests]

"""Signals: one partition per strategy parameter set, over every research market's candles; a run may
cover many parameter sets (a single-run backfill), computed in one process over one connection."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.signals import SIGNAL_CHECKS, signal_param_sets
from quantdag.strategies import Strategy
from resources import ExchangeResource, WarehouseResource


def build(config: ProjectConfig, parts: Partitions, configured: dict[str, Strategy]) -> list[dg.AssetsDefinition]:
    """``signals`` of a parameter set on the configured research markets, gated by a look-ahead check."""

    @dg.asset(
        partitions_def=parts.param_sets,
        backfill_policy=SINGLE_RUN,
        group_name="signals",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("candles", partition_mapping=dg.AllPartitionMapping())],
        kinds={"duckdb", "polars"},
        metadata={"table": "signals.signals", "also_writes": "signals.param_sets, signals.lookahead"},
        check_specs=[
            dg.AssetCheckSpec(
                "no_lookahead", asset="signals", blocking=True,
                description="the strategy's signals and indicators on a candle depend on that candle and earlier ones only",
            ),
            *(dg.AssetCheckSpec(name, asset="signals", description=desc, blocking=True) for name, desc in SIGNAL_CHECKS.items()),
        ],
    )
    def signals(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource):
        """Entry/exit (and target) signals of each parameter set of the run, computed on closed candles only."""
        markets = [m.on(exchange.venue) for m in config.research_markets]
        batch = signal_param_sets(warehouse.get(), context.partition_keys, markets, configured=configured)
        yield dg.MaterializeResult(metadata=report_metadata(batch.report))
        for name, v in batch.checks.items():
            meta = dict(v.metadata)
            if "detail" in meta:
                meta["detail"] = dg.MetadataValue.md(f"```\n{meta['detail']}\n```")
            if "looking_ahead" in meta:
                meta["looking_ahead"] = dg.MetadataValue.json(meta["looking_ahead"])
                for key, where in v.metadata["looking_ahead"].items():
                    context.log.error(f"{key} looks ahead: column {where}")
            yield dg.AssetCheckResult(check_name=name, passed=v.passed, severity=dg.AssetCheckSeverity.ERROR, metadata=meta)

    return [signals]

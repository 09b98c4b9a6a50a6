"""Signals: one partition per strategy parameter set, over every research market's candles."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata
from assets.market_data import candles
from assets.partitions import param_sets
from assets.universe import RESEARCH_MARKETS
from quantdag.markets import Market
from quantdag.stages.signals import build_signals
from resources import ExchangeResource, WarehouseResource


def research_markets(venue: str) -> list[Market]:
    return [Market(venue, m.symbol, m.timeframe, m.resample_from) for m in RESEARCH_MARKETS]


@dg.asset(
    partitions_def=param_sets,
    group_name="signals",
    pool=DUCKDB_POOL,
    deps=[dg.AssetDep(candles, partition_mapping=dg.AllPartitionMapping())],
    kinds={"duckdb", "polars"},
    metadata={"table": "signals.signals"},
)
def signals(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
    """Entry/exit (and target) signals of one parameter set, computed on closed candles only."""
    report = build_signals(warehouse.get(), context.partition_key, research_markets(exchange.venue))
    return dg.MaterializeResult(metadata=report_metadata(report))

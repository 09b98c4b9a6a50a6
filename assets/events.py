"""Market events: jumps, volume spikes, gaps, dislocations, depegs, volatility regimes per day."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata
from assets.market_data import candles
from assets.partitions import SINGLE_RUN, daily, day_windows
from quantdag.stages.events import build_events
from resources import ExchangeResource, WarehouseResource


@dg.asset(
    partitions_def=daily,
    backfill_policy=SINGLE_RUN,
    group_name="events",
    pool=DUCKDB_POOL,
    deps=[dg.AssetDep(candles, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date"))],
    kinds={"duckdb", "polars"},
    metadata={"table": "market.events"},
)
def market_events(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
    """Events across all markets of the day, with severity, into ``market.events``."""
    report = build_events(warehouse.get(), exchange.venue, day_windows(context))
    meta = dict(report_metadata(report))
    return dg.MaterializeResult(metadata=meta)

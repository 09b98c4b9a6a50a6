"""Market events: jumps, volume spikes, gaps, dislocations, depegs, volatility regimes per day."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata, retry_transient
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.events import build_events
from resources import ExchangeResource, WarehouseResource


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``market_events``: one daily partition across every market."""

    @dg.asset(
        partitions_def=parts.daily,
        backfill_policy=SINGLE_RUN,
        group_name="events",
        pool=DUCKDB_POOL,
        deps=["candles"],
        kinds={"duckdb", "polars"},
        metadata={"table": "market.events"},
    )
    def market_events(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Events across all markets of the day, with severity, into ``market.events``."""
        with retry_transient():
            report = build_events(warehouse.get(), exchange.venue, parts.day_windows(context), events_config)
        return dg.MaterializeResult(metadata=report_metadata(report))

    events_config = config.event_config()
    return [market_events]

"""Indicators: ``market.candles`` → ``features.indicators`` (the configured TA-Lib and user indicators, warmed by earlier days)."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata, retry_transient
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.indicators import build_indicators, lookback_days_of
from resources import ExchangeResource, WarehouseResource


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``indicators`` of the configured specs, whose lineage reads the look-back days of the configured markets.

    Called after the strategy files are imported, so user indicators they register resolve here.
    """
    specs = config.indicator_specs()
    lookback = dg.TimeWindowPartitionMapping(
        start_offset=-lookback_days_of(parts.markets, specs), allow_nonexistent_upstream_partitions=True
    )

    @dg.asset(
        partitions_def=parts.daily,
        backfill_policy=SINGLE_RUN,
        group_name="indicators",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("candles", partition_mapping=lookback)],
        kinds={"duckdb", "talib"},
        metadata={"table": "features.indicators", "columns": ", ".join(c for s in specs for c in s.columns)},
    )
    def indicators(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """The configured indicators (quantdag.yaml: indicators) per candle; NULL while warming up."""
        windows = {m.on(exchange.venue): w for m, w in parts.market_windows(context).items()}
        with retry_transient():
            report = build_indicators(warehouse.get(), windows, specs)
        return dg.MaterializeResult(metadata=report_metadata(report))

    return [indicators]

"""Indicators: ``market.candles`` → ``features.indicators`` (TA-Lib, warmed by earlier days)."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.features import lookback_days
from quantdag.stages.indicators import build_indicators
from resources import ExchangeResource, WarehouseResource


def build(parts: Partitions) -> list[dg.AssetsDefinition]:
    """``indicators``, whose lineage reads the look-back days of the configured markets."""
    lookback = dg.MultiPartitionMapping(
        {
            "date": dg.DimensionPartitionMapping(
                "date",
                dg.TimeWindowPartitionMapping(
                    start_offset=-max(lookback_days(m.timeframe) for m in parts.markets),
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
            "market": dg.DimensionPartitionMapping("market", dg.IdentityPartitionMapping()),
        }
    )

    @dg.asset(
        partitions_def=parts.day_market,
        backfill_policy=SINGLE_RUN,
        group_name="indicators",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("candles", partition_mapping=lookback)],
        kinds={"duckdb", "talib"},
        metadata={"table": "features.indicators"},
    )
    def indicators(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """SMA, EMA, RSI, MACD, Bollinger Bands, ATR and ADX per candle; NULL while warming up."""
        windows = {m.on(exchange.venue): w for m, w in parts.market_windows(context).items()}
        report = build_indicators(warehouse.get(), windows)
        return dg.MaterializeResult(metadata=report_metadata(report))

    return [indicators]

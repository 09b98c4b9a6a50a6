"""Indicators: ``market.candles`` → ``features.indicators`` (TA-Lib, warmed by earlier days)."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata, run_windows
from assets.market_data import candles
from assets.partitions import SINGLE_RUN, day_market
from assets.universe import UNIVERSE
from quantdag.features import lookback_days
from quantdag.stages.indicators import build_indicators
from resources import ExchangeResource, WarehouseResource

#: Lineage of the look-back: a day's indicators read the previous days' candles too.
LOOKBACK = dg.MultiPartitionMapping(
    {
        "date": dg.DimensionPartitionMapping(
            "date",
            dg.TimeWindowPartitionMapping(
                start_offset=-max(lookback_days(m.timeframe) for m in UNIVERSE),
                allow_nonexistent_upstream_partitions=True,
            ),
        ),
        "market": dg.DimensionPartitionMapping("market", dg.IdentityPartitionMapping()),
    }
)


@dg.asset(
    partitions_def=day_market,
    backfill_policy=SINGLE_RUN,
    group_name="indicators",
    pool=DUCKDB_POOL,
    deps=[dg.AssetDep(candles, partition_mapping=LOOKBACK)],
    kinds={"duckdb", "talib"},
    metadata={"table": "features.indicators"},
)
def indicators(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
    """SMA, EMA, RSI, MACD, Bollinger Bands, ATR and ADX per candle; NULL while warming up."""
    report = build_indicators(warehouse.get(), run_windows(context, exchange.venue))
    return dg.MaterializeResult(metadata=report_metadata(report))

"""Ingestion and normalization: exchange → ``raw.candles`` → ``market.candles`` + ``market.gaps``."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata, retry_transient
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.market_data import ingest_raw, normalize_candles
from resources import ExchangeResource, WarehouseResource

CANDLE_CHECKS = {
    "duplicate_keys": "no two candles share (exchange, symbol, timeframe, ts)",
    "broken_ohlc": "finite prices > 0, volume >= 0, low <= open/close <= high",
    "unclosed": "every stored candle had closed when stored",
    "off_grid": "open times sit on the timeframe's grid",
    "missing_unrecorded": "every missing candle is filled or recorded in market.gaps",
    "holes_unrecorded": "every hole between stored candles (the market's whole series) is recorded in market.gaps",
}


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``raw_candles`` and ``candles`` over the configured universe."""

    @dg.asset(
        partitions_def=parts.daily,
        backfill_policy=SINGLE_RUN,
        group_name="ingestion",
        pool=DUCKDB_POOL,
        kinds={"duckdb", "ccxt"},
        metadata={"table": "raw.candles"},
    )
    def raw_candles(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Candles as the exchange sent them, with fetch time; downloads only what is missing."""
        windows = {m.on(exchange.venue): w for m, w in parts.market_windows(context).items()}
        with retry_transient():
            report = ingest_raw(warehouse.get(), exchange.client(), windows, max_refetches=config.exchange.gap_refetches)
        return dg.MaterializeResult(metadata=report_metadata(report))

    @dg.asset(
        partitions_def=parts.daily,
        backfill_policy=SINGLE_RUN,
        group_name="normalization",
        pool=DUCKDB_POOL,
        deps=[raw_candles],
        kinds={"duckdb", "polars"},
        metadata={"table": "market.candles", "also_writes": "market.gaps"},
        check_specs=[
            dg.AssetCheckSpec(name, asset="candles", description=desc, blocking=True)
            for name, desc in CANDLE_CHECKS.items()
        ],
    )
    def candles(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource):
        """Clean candles: UTC, sorted, deduplicated, closed only, OHLC-valid, gaps filled and recorded."""
        wh = warehouse.get()
        windows = {m.on(exchange.venue): w for m, w in parts.market_windows(context).items()}
        with retry_transient():
            report = normalize_candles(wh, windows)  # checked before its commit: a violation writes nothing
        yield dg.MaterializeResult(metadata=report_metadata(report))
        violations = report.violations
        for name in CANDLE_CHECKS:
            yield dg.AssetCheckResult(
                check_name=name,
                passed=violations.get(name, 0) == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"violations": violations.get(name, 0)},
            )

    return [raw_candles, candles]

"""Streamed candles: the landing area into market.candles, with every market's freshness as a check."""

from pathlib import Path

import dagster as dg

from assets.common import DUCKDB_POOL
from quantdag.config import ProjectConfig
from quantdag.stages.stream import freshness, ingest_landing, landing_root, recent_events
from resources import ExchangeResource, WarehouseResource


def build(config: ProjectConfig) -> list[dg.AssetsDefinition]:
    """``streamed_candles`` and its ``streams_fresh`` check (a warning: a stalled stream shows in the UI)."""
    markets = config.markets

    @dg.asset(group_name="streaming", pool=DUCKDB_POOL, kinds={"duckdb", "parquet"},
              metadata={"table": "market.candles", "landing": "<data_dir>/landing",
                        "also_writes": "market.stream_candles, market.trades, market.book, market.stream_events"},
              check_specs=[dg.AssetCheckSpec("streams_fresh", asset="streamed_candles",
                                             description="every market's last streamed 1m candle closed < 3 minutes ago")])  # fmt: skip
    def streamed_candles(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource):
        """Closed 1m candles the streamer (make stream) landed and could not store itself (a job held DuckDB)."""
        wh = warehouse.get()
        report = ingest_landing(wh, landing_root(Path(warehouse.path).parent), retention=config.stream.retention())
        fresh = freshness(wh, [m.on(exchange.venue) for m in markets])
        stale = fresh.filter(~fresh["fresh"])
        yield dg.MaterializeResult(metadata={
            "files": report.files, "candles": report.candles, "by_market": dg.MetadataValue.json(report.by_market),
            "trades": report.rows.get("trades", 0), "book_samples": report.rows.get("book", 0),
            "pruned": dg.MetadataValue.json(report.pruned),
            "stream_events_24h": dg.MetadataValue.json(recent_events(wh)),
        })  # fmt: skip
        yield dg.AssetCheckResult(
            check_name="streams_fresh", passed=stale.height == 0, severity=dg.AssetCheckSeverity.WARN,
            metadata={"stale": dg.MetadataValue.json(stale["market"].to_list()),
                      "age_s": dg.MetadataValue.json({r["market"]: r["age_s"] for r in fresh.iter_rows(named=True)})},
        )  # fmt: skip

    return [streamed_candles]

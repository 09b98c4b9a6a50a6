"""Sentiment: feeds -> ``raw.news`` -> scored ``sentiment.items`` -> per-candle ``sentiment.bars``, by UTC day."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata, retry_transient
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.sentiment import build_sentiment_bars, index_assets, ingest_news, lookback_days, score_news
from resources import ExchangeResource, NewsResource, WarehouseResource


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``raw_news``, ``sentiment_items`` and ``sentiment_bars`` over the configured universe."""
    settings = config.sentiment
    stablecoins = config.event_config().stablecoins
    # a day's bars read the items of the days before it that still count at its first close, and a day's
    # items are judged against the stories of the days before it (near-duplicates)
    items_lookback = dg.TimeWindowPartitionMapping(
        start_offset=-lookback_days(settings.window_hours, settings.half_life_hours), allow_nonexistent_upstream_partitions=True
    )

    @dg.asset(
        partitions_def=parts.daily, backfill_policy=SINGLE_RUN, group_name="sentiment", pool=DUCKDB_POOL,
        kinds={"duckdb"}, metadata={"table": "raw.news"},
    )  # fmt: skip
    def raw_news(context: dg.AssetExecutionContext, warehouse: WarehouseResource, news: NewsResource) -> dg.MaterializeResult:
        """News and social items as the feeds gave them, every version, with published and fetched times."""
        with retry_transient():
            report = ingest_news(warehouse.get(), news.sources(index_assets(parts.markets, stablecoins)), parts.day_windows(context))
        return dg.MaterializeResult(metadata=report_metadata(report))

    @dg.asset(
        partitions_def=parts.daily, backfill_policy=SINGLE_RUN, group_name="sentiment", pool=DUCKDB_POOL,
        deps=[raw_news], kinds={"duckdb", "polars"}, metadata={"table": "sentiment.items"},
    )  # fmt: skip
    def sentiment_items(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Each version scored (VADER + crypto lexicon), tagged with the universe's assets, near-duplicates marked."""
        with retry_transient():
            report = score_news(warehouse.get(), parts.markets, parts.day_windows(context), dedup_threshold=settings.dedup_threshold)
        return dg.MaterializeResult(metadata=report_metadata(report))

    @dg.asset(
        partitions_def=parts.daily, backfill_policy=SINGLE_RUN, group_name="sentiment", pool=DUCKDB_POOL,
        deps=[dg.AssetDep(sentiment_items, partition_mapping=items_lookback), "candles"], kinds={"duckdb", "polars"},
        metadata={"table": "sentiment.bars"},
    )  # fmt: skip
    def sentiment_bars(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Per candle: count, mean, dispersion and decayed score of the items published AND fetched before its close."""
        markets = [m.on(exchange.venue) for m in parts.markets]
        with retry_transient():
            report = build_sentiment_bars(warehouse.get(), markets, parts.day_windows(context),
                                          window_hours=settings.window_hours, half_life_hours=settings.half_life_hours)
        return dg.MaterializeResult(metadata=report_metadata(report))

    return [raw_news, sentiment_items, sentiment_bars]

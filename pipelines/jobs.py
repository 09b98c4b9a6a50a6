"""Jobs select assets by group (one job per stage), never by listing them."""

from __future__ import annotations

import dagster as dg

from assets.partitions import Partitions


def build_jobs(parts: Partitions) -> dict[str, dg.UnresolvedAssetJobDefinition]:
    """Every job of the pipeline, by name."""
    by_group = lambda name, *groups, **kw: dg.define_asset_job(name, selection=dg.AssetSelection.groups(*groups), **kw)  # noqa: E731
    jobs = [
        by_group("ingestion_job", "ingestion", partitions_def=parts.daily),
        by_group("normalization_job", "normalization", partitions_def=parts.daily),
        by_group("indicators_job", "indicators", partitions_def=parts.daily),
        by_group("events_job", "events"),
        by_group("sentiment_job", "sentiment", partitions_def=parts.daily),
        by_group("ml_features_job", "ml_features", partitions_def=parts.daily),
        # Labels, a training (MLflow run, registered version, champion/challenger) and the champion's predictions.
        by_group("ml_job", "ml", description="Label, train, register and promote the model; write the champion's predictions."),
        # The main job: download, clean and compute indicators, events, sentiment and model features for a day (or a backfilled range).
        by_group(
            "daily_data_job", "ingestion", "normalization", "indicators", "events", "sentiment", "ml_features", partitions_def=parts.daily,
            description="Fetch, clean and compute indicators, market events and model features for every market of the "
                        "partition's day; ingest, score and align its news.",
        ),
        # Signals and backtests of one strategy parameter set (a dynamic partition).
        by_group(
            "backtest_job", "signals", "backtests", partitions_def=parts.param_sets,
            description="Compute a parameter set's signals and backtest them on every research market.",
        ),
        # A parameter sweep of one strategy (partition) with DSR and PBO, logged to MLflow.
        by_group("optimization_job", "optimization", partitions_def=parts.strategies),
        # One shard of a strategy's sweep (strategy × shard), when optimization.shards > 1: run every shard, then optimization_job merges.
        *([by_group("optimization_shards_job", "optimization_shards", partitions_def=parts.sweep_shards)] if parts.sweep_shards else []),
        # One paper-trading step of a parameter set (requested by the `paper_on_new_signals` sensor).
        dg.define_asset_job("paper_trade_job", selection=dg.AssetSelection.assets("paper_trades"), partitions_def=parts.param_sets),
        # The configured portfolio: its members' weights and its shared-cash backtest (MLflow), after the backtest job.
        by_group("portfolio_job", "portfolio", description="Combine the portfolio's members into weights and backtest them in one account."),
        # One paper cycle of the portfolio's account, then its paper-vs-backtest drift.
        by_group("portfolio_paper_job", "portfolio_paper", description="Paper-trade the portfolio (its targets, sizing and risk rules) and check drift."),
        # Streamed candles that waited in the landing area (a job held DuckDB), and every market's freshness.
        by_group("stream_ingest_job", "streaming", description="Store landed streamed candles; check each market's freshness."),
        # The daily backtest-paper drift check of a parameter set.
        dg.define_asset_job("paper_drift_job", selection=dg.AssetSelection.assets("paper_drift_check"), partitions_def=parts.param_sets),
    ]
    return {j.name: j for j in jobs}

"""Jobs select assets by group (one job per stage), never by listing them."""

from __future__ import annotations

import dagster as dg

from assets.partitions import day_market, param_sets, strategies

ingestion_job = dg.define_asset_job(
    "ingestion_job", selection=dg.AssetSelection.groups("ingestion"), partitions_def=day_market
)
normalization_job = dg.define_asset_job(
    "normalization_job", selection=dg.AssetSelection.groups("normalization"), partitions_def=day_market
)
indicators_job = dg.define_asset_job(
    "indicators_job", selection=dg.AssetSelection.groups("indicators"), partitions_def=day_market
)
events_job = dg.define_asset_job("events_job", selection=dg.AssetSelection.groups("events"))

#: The main job: download, clean and compute indicators for a day (or a backfilled range) of every market.
daily_data_job = dg.define_asset_job(
    "daily_data_job",
    selection=dg.AssetSelection.groups("ingestion", "normalization", "indicators"),
    partitions_def=day_market,
    description="Fetch, clean and compute indicators for every market of the partition's day.",
)

#: Signals and backtests of one strategy parameter set (a dynamic partition).
backtest_job = dg.define_asset_job(
    "backtest_job",
    selection=dg.AssetSelection.groups("signals", "backtests"),
    partitions_def=param_sets,
    description="Compute a parameter set's signals and backtest them on every research market.",
)

#: A parameter sweep of one strategy (partition) with DSR and PBO, logged to MLflow.
optimization_job = dg.define_asset_job(
    "optimization_job", selection=dg.AssetSelection.groups("optimization"), partitions_def=strategies
)

#: One paper-trading step of a parameter set (requested by the `paper_on_new_signals` sensor).
paper_trade_job = dg.define_asset_job(
    "paper_trade_job", selection=dg.AssetSelection.assets("paper_trades"), partitions_def=param_sets
)
#: The daily backtest-paper drift check of a parameter set.
paper_drift_job = dg.define_asset_job(
    "paper_drift_job", selection=dg.AssetSelection.assets("paper_drift_check"), partitions_def=param_sets
)

ALL_JOBS = [
    daily_data_job, ingestion_job, normalization_job, indicators_job, events_job, backtest_job,
    optimization_job, paper_trade_job, paper_drift_job,
]

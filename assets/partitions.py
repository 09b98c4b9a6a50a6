"""Partitions of the pipeline, built from the configuration: UTC days, parameter sets, strategies.

A market-data partition is one UTC day of every configured market. Per-market partitions (day ×
market) cost Dagster a materialization event per market per day per asset: 33,000 events, minutes
of bookkeeping, for a year of ten markets whose engine work takes seconds. A market added to the
configuration is found missing by the warehouse (``pipelines.demo.missing_days``), not by the
partitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg

from quantdag.config import ProjectConfig
from quantdag.markets import Market, Window, day_windows

#: Strategy parameter sets: adding one is adding a key (see ``quantdag.strategies.keys``).
param_sets = dg.DynamicPartitionsDefinition(name="param_sets")

#: A year-long backfill is one run, not 365 × markets.
SINGLE_RUN = dg.BackfillPolicy.single_run()


def _day(key: str) -> date:
    return datetime.strptime(key, "%Y-%m-%d").date()


@dataclass(frozen=True)
class Partitions:
    """Every partitions definition of one configuration, and how a run's keys become windows."""

    markets: tuple[Market, ...]
    daily: dg.DailyPartitionsDefinition
    strategies: dg.StaticPartitionsDefinition
    param_sets: dg.DynamicPartitionsDefinition = param_sets
    #: strategy × shard (``"<shard>|<strategy>"``) when ``optimization.shards`` > 1, else None
    sweep_shards: dg.MultiPartitionsDefinition | None = None

    def sweep_shard(self, key: str) -> tuple[str, int]:
        """The strategy and shard number of a ``sweep_shards`` partition key."""
        assert self.sweep_shards is not None
        dims = self.sweep_shards.get_partition_key_from_str(key).keys_by_dimension
        return dims["strategy"], int(dims["shard"])

    def market_windows(self, context: dg.AssetExecutionContext) -> dict[Market, list[Window]]:
        """Per market (every configured one), the UTC windows this run covers (one per run of consecutive days)."""
        windows = self.day_windows(context)
        return {m: windows for m in sorted(self.markets, key=lambda m: m.key)}

    def day_windows(self, context: dg.AssetExecutionContext) -> list[Window]:
        """UTC windows of a daily-partitioned run (one per run of consecutive days)."""
        return day_windows(_day(k) for k in context.partition_keys)


def build_partitions(config: ProjectConfig, strategies: list[str]) -> Partitions:
    """Partitions of ``config``'s universe; one optimization partition per registered strategy (× shard if sharded)."""
    markets = config.markets
    daily = dg.DailyPartitionsDefinition(start_date=config.universe.start().isoformat(), timezone="UTC")
    by_strategy = dg.StaticPartitionsDefinition(strategies)
    n_shards = config.optimization.shards
    shards = dg.StaticPartitionsDefinition([str(k) for k in range(n_shards)])
    return Partitions(
        markets=markets,
        daily=daily,
        strategies=by_strategy,
        sweep_shards=dg.MultiPartitionsDefinition({"strategy": by_strategy, "shard": shards}) if n_shards > 1 else None,
    )

"""Partitions of the pipeline, built from the configuration: UTC day × market, parameter sets, strategies."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg

from quantdag.config import ProjectConfig
from quantdag.markets import Market, Window, day_windows, market_by_key

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
    market: dg.StaticPartitionsDefinition
    day_market: dg.MultiPartitionsDefinition
    strategies: dg.StaticPartitionsDefinition
    param_sets: dg.DynamicPartitionsDefinition = param_sets

    def market_windows(self, context: dg.AssetExecutionContext) -> dict[Market, list[Window]]:
        """Per market, the UTC windows this run covers (one per run of consecutive days)."""
        by_market: dict[Market, list[date]] = defaultdict(list)
        for key in context.partition_keys:
            dims = self.day_market.get_partition_key_from_str(key).keys_by_dimension
            by_market[market_by_key(self.markets, dims["market"])].append(_day(dims["date"]))
        return {m: day_windows(days) for m, days in sorted(by_market.items(), key=lambda kv: kv[0].key)}

    def day_windows(self, context: dg.AssetExecutionContext) -> list[Window]:
        """UTC windows of a daily-partitioned run (one per run of consecutive days)."""
        return day_windows(_day(k) for k in context.partition_keys)


def build_partitions(config: ProjectConfig, strategies: list[str]) -> Partitions:
    """Partitions of ``config``'s universe; one optimization partition per registered strategy."""
    markets = config.markets
    daily = dg.DailyPartitionsDefinition(start_date=config.universe.start().isoformat(), timezone="UTC")
    market = dg.StaticPartitionsDefinition([m.key for m in markets])
    return Partitions(
        markets=markets,
        daily=daily,
        market=market,
        day_market=dg.MultiPartitionsDefinition({"date": daily, "market": market}),
        strategies=dg.StaticPartitionsDefinition(strategies),
    )

"""Partitions shared by the market-data assets: UTC day × market, backfilled in one run."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from assets.universe import UNIVERSE, MarketSpec, market
from quantdag.strategies import list_strategies

#: First day of history the pipeline keeps by default.
START_DATE = "2025-06-01"

daily = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
markets = dg.StaticPartitionsDefinition([m.key for m in UNIVERSE])
day_market = dg.MultiPartitionsDefinition({"date": daily, "market": markets})

#: A year-long backfill is one run, not 365 × markets.
SINGLE_RUN = dg.BackfillPolicy.single_run()


def _day(key: str) -> date:
    return datetime.strptime(key, "%Y-%m-%d").date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC half-open window ``[day 00:00, next day 00:00)``."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def contiguous(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days merged into inclusive runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def market_windows(context: dg.AssetExecutionContext) -> dict[MarketSpec, list[tuple[datetime, datetime]]]:
    """Per market, the UTC windows this run covers (one per run of consecutive days)."""
    by_market: dict[MarketSpec, list[date]] = defaultdict(list)
    for key in context.partition_keys:
        dims = day_market.get_partition_key_from_str(key).keys_by_dimension
        by_market[market(dims["market"])].append(_day(dims["date"]))
    return {
        m: [(day_bounds(a)[0], day_bounds(b)[1]) for a, b in contiguous(days)]
        for m, days in sorted(by_market.items(), key=lambda kv: kv[0].key)
    }


def day_windows(context: dg.AssetExecutionContext) -> list[tuple[datetime, datetime]]:
    """UTC windows of a daily-partitioned run (one per run of consecutive days)."""
    return [(day_bounds(a)[0], day_bounds(b)[1]) for a, b in contiguous([_day(k) for k in context.partition_keys])]

#: Strategy parameter sets, keyed ``"<strategy> <params json>"``: adding one is adding a key.
param_sets = dg.DynamicPartitionsDefinition(name="param_sets")

#: One optimization partition per registered strategy (registering one adds its partition).
strategies = dg.StaticPartitionsDefinition(list_strategies())

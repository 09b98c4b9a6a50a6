"""Daily schedules: yesterday's data at 00:15 UTC, its events, backtests (many parameter sets per run),
the portfolio, paper marks and drift."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from assets.partitions import param_sets
from quantdag.config import ProjectConfig


def _status(on: bool) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED


def build_schedules(
    config: ProjectConfig,
    jobs: dict[str, dg.UnresolvedAssetJobDefinition],
    warehouse_path: str | None = None,
    configured: Mapping[str, Any] | None = None,
) -> list[dg.ScheduleDefinition]:
    """Schedules whose default status follows ``automation`` (paper ones only with ``paper_trading``);
    ``configured``: the configuration's parameter sets (key -> strategy)."""
    auto = config.automation
    paper = frozenset(config.strategies.paper)
    daily, trading = _status(auto.daily_schedules), _status(auto.paper_trading)

    def requests(context: dg.ScheduleEvaluationContext, period: str, *, paper_only: bool):
        """One run per parameter set (only paper-enabled ones if asked), keyed by the tick's period."""
        from quantdag.stages.paper import paper_enabled_now
        from quantdag.strategies.keys import strategy_name_of

        stamp = context.scheduled_execution_time.strftime(period)
        enabled = paper_enabled_now(warehouse_path, sorted(paper)) if paper_only else paper
        if enabled is None:  # a busy warehouse: skip the tick rather than trade a strategy switched off by hand
            context.log.warning("warehouse busy: paper switches unread, no paper run this tick")
            return
        for key in param_sets.get_partition_keys(dynamic_partitions_store=context.instance):
            if not paper_only or strategy_name_of(key) in enabled:
                yield dg.RunRequest(run_key=f"{stamp}|{key}", partition_key=key)

    @dg.schedule(job=jobs["backtest_job"], cron_schedule="0 1 * * *", execution_timezone="UTC",
                 name="daily_backtest_schedule", default_status=daily)
    def daily_backtest_schedule(context: dg.ScheduleEvaluationContext):
        """Every parameter set re-signalled and re-backtested on the day's new candles, in one run.

        A parameter set that would stop the batch gets a run of its own, which fails alone (and
        alerts) or passes again: one whose last look-ahead check failed (its code may have been
        fixed), and one this code cannot build (e.g. its strategy's file was removed).
        """
        from pipelines.batches import contiguous_ranges, range_tags_of

        stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
        order = param_sets.get_partition_keys(dynamic_partitions_store=context.instance)
        alone = _alone(order)
        for batch in contiguous_ranges(order, [k for k in order if k not in alone]):
            yield dg.RunRequest(run_key=f"{stamp}|{batch[0]}..{batch[-1]}", tags=range_tags_of(batch))
        for key in sorted(alone):
            yield dg.RunRequest(run_key=f"{stamp}|{key}", partition_key=key)

    def _alone(keys: list[str]) -> set[str]:
        """Keys whose stored look-ahead verdict failed or that cannot be built (read-only, short: a
        busy or absent warehouse just means the stored verdicts and parameters are not consulted)."""
        from quantdag.stages.signals import lookahead_failures, unresolvable_param_sets
        from quantdag.store import Warehouse, WarehouseError

        if not keys:
            return set()
        wh = None
        if warehouse_path is not None and os.path.exists(warehouse_path):
            wh = Warehouse(warehouse_path, read_only=True, lock_timeout=1.0)
        try:
            return set(lookahead_failures(wh, keys) if wh else {}) | set(unresolvable_param_sets(wh, keys, configured))
        except WarehouseError:
            return set(unresolvable_param_sets(None, keys, configured))

    @dg.schedule(job=jobs["paper_trade_job"], cron_schedule="5 * * * *", execution_timezone="UTC",
                 name="paper_mark_to_market_schedule", default_status=trading)
    def paper_mark_to_market_schedule(context: dg.ScheduleEvaluationContext):
        """Hourly: every paper-enabled account reconciles, re-checks its kill switches and records its equity."""
        yield from requests(context, "%Y-%m-%dT%H", paper_only=True)

    @dg.schedule(job=jobs["paper_drift_job"], cron_schedule="30 1 * * *", execution_timezone="UTC",
                 name="daily_paper_drift_schedule", default_status=trading)
    def daily_paper_drift_schedule(context: dg.ScheduleEvaluationContext):
        """Daily, after the data and backtests: every paper account's fills against the backtest's."""
        yield from requests(context, "%Y-%m-%d", paper_only=True)

    # The portfolio after the day's backtests (its weights read their signals), and its paper account
    # every hour: a new candle's decision, the kill switches re-checked, equity marked, drift.
    daily_portfolio_schedule = dg.ScheduleDefinition(
        name="daily_portfolio_schedule", job=jobs["portfolio_job"], cron_schedule="20 1 * * *",
        execution_timezone="UTC", default_status=daily,
    )  # fmt: skip
    portfolio_paper_schedule = dg.ScheduleDefinition(
        name="portfolio_paper_schedule", job=jobs["portfolio_paper_job"], cron_schedule="7 * * * *",
        execution_timezone="UTC", default_status=trading,
    )  # fmt: skip
    # Periodic retraining (ml.retrain_cron): labels, a new version, promoted only if it beats the champion.
    ml_training_schedule = dg.ScheduleDefinition(
        name="ml_training_schedule", job=jobs["ml_job"], cron_schedule=config.ml.retrain_cron,
        execution_timezone="UTC", default_status=daily,
    )  # fmt: skip
    return [
        *([ml_training_schedule] if config.ml.enabled else []),
        dg.build_schedule_from_partitioned_job(jobs["daily_data_job"], hour_of_day=0, minute_of_hour=15, default_status=daily),
        daily_backtest_schedule, paper_mark_to_market_schedule, daily_paper_drift_schedule, daily_portfolio_schedule,
        portfolio_paper_schedule,
    ]  # fmt: skip

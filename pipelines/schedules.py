"""Daily schedules: yesterday's data at 00:15 UTC, its events once the data is in."""

from __future__ import annotations

import dagster as dg

from assets.partitions import param_sets
from pipelines.jobs import backtest_job, daily_data_job, events_job, paper_drift_job, paper_trade_job

daily_data_schedule = dg.build_schedule_from_partitioned_job(daily_data_job, hour_of_day=0, minute_of_hour=15)
daily_events_schedule = dg.build_schedule_from_partitioned_job(events_job, hour_of_day=0, minute_of_hour=45)



def _param_set_requests(context: dg.ScheduleEvaluationContext, period: str, *, paper_only: bool):
    """One run per parameter set (only paper-enabled ones if asked), keyed by the tick's period."""
    from pipelines.sensors import PAPER_STRATEGIES

    stamp = context.scheduled_execution_time.strftime(period)
    for key in param_sets.get_partition_keys(dynamic_partitions_store=context.instance):
        if not paper_only or key.split(" ", 1)[0] in PAPER_STRATEGIES:
            yield dg.RunRequest(run_key=f"{stamp}|{key}", partition_key=key)


@dg.schedule(job=backtest_job, cron_schedule="0 1 * * *", execution_timezone="UTC", name="daily_backtest_schedule")
def daily_backtest_schedule(context: dg.ScheduleEvaluationContext):
    """Every parameter set re-signalled and re-backtested on the day's new candles."""
    yield from _param_set_requests(context, "%Y-%m-%d", paper_only=False)


@dg.schedule(job=paper_trade_job, cron_schedule="5 * * * *", execution_timezone="UTC", name="paper_mark_to_market_schedule")
def paper_mark_to_market_schedule(context: dg.ScheduleEvaluationContext):
    """Hourly: every paper-enabled account reconciles, re-checks its kill switches and records its equity."""
    yield from _param_set_requests(context, "%Y-%m-%dT%H", paper_only=True)


@dg.schedule(job=paper_drift_job, cron_schedule="30 1 * * *", execution_timezone="UTC", name="daily_paper_drift_schedule")
def daily_paper_drift_schedule(context: dg.ScheduleEvaluationContext):
    """Daily, after the data and backtests: every paper account's fills against the backtest's."""
    yield from _param_set_requests(context, "%Y-%m-%d", paper_only=True)


ALL_SCHEDULES = [
    daily_data_schedule, daily_events_schedule, daily_backtest_schedule, paper_mark_to_market_schedule,
    daily_paper_drift_schedule,
]

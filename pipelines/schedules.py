"""Daily schedules: yesterday's data at 00:15 UTC, its events once the data is in."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import daily_data_job, events_job

daily_data_schedule = dg.build_schedule_from_partitioned_job(daily_data_job, hour_of_day=0, minute_of_hour=15)
daily_events_schedule = dg.build_schedule_from_partitioned_job(events_job, hour_of_day=0, minute_of_hour=45)

ALL_SCHEDULES = [daily_data_schedule, daily_events_schedule]

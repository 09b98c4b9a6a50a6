"""The code location: every asset, job, schedule, sensor and resource of quantdag."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets import backtests, events, indicators, market_data, optimization, paper, signals
from pipelines.jobs import ALL_JOBS
from pipelines.schedules import ALL_SCHEDULES
from pipelines.sensors import ALL_SENSORS
from resources import DEFAULT_DATA_DIR, make_resources

ASSET_MODULES = [market_data, indicators, events, signals, backtests, optimization, paper]


def build_defs(data_dir: str | Path = DEFAULT_DATA_DIR, **resource_options: object) -> dg.Definitions:
    """Definitions whose files live under ``data_dir`` (tests pass a temporary one)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=ALL_JOBS,
        schedules=ALL_SCHEDULES,
        sensors=ALL_SENSORS,
        resources=make_resources(data_dir, **resource_options),
    )


defs = build_defs()

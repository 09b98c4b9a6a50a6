"""The code location: every asset, job, schedule, sensor and resource, built from ``quantdag.yaml``.

``QUANTDAG_CONFIG=path`` loads another file. A malformed file fails here, naming the key, so
``dagster definitions validate`` and ``make demo`` stop before any work.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets import build_assets
from assets.partitions import build_partitions
from pipelines.jobs import build_jobs
from pipelines.schedules import build_schedules
from pipelines.sensors import build_sensors
from quantdag.config import ProjectConfig, load_config
from quantdag.errors import ConfigurationError
from quantdag.ml.registry import use_store
from quantdag.strategies import list_strategies
from quantdag.strategies.keys import configured_param_sets
from quantdag.strategies.loader import load_user_strategies
from resources import make_resources


def prepare(config: ProjectConfig) -> dict:
    """Register user strategies and resolve the configured parameter sets (checked against the registry)."""
    load_user_strategies(config.strategy_folders)
    registered = set(list_strategies())
    for section, names in (("strategies.paper", config.strategies.paper), ("optimization.strategies", config.optimization.strategies)):
        unknown = [n for n in names if n not in registered]
        if unknown:
            raise ConfigurationError(f"{section}: unknown strategies {unknown}; registered: {sorted(registered)}")
    return configured_param_sets(
        ((p.strategy, p.params) for p in config.strategies.param_sets), defaults=config.strategies.defaults
    )


def build_defs(
    data_dir: str | Path | None = None, *, config: ProjectConfig | None = None, sim_url: str | None = None
) -> dg.Definitions:
    """Definitions of ``config`` (default: the configuration file); files under ``data_dir`` if given."""
    config = config or load_config()
    configured = prepare(config)
    parts = build_partitions(config, list_strategies())
    jobs = build_jobs(parts)
    assets = build_assets(config, parts, configured)
    resources = make_resources(config, data_dir, sim_url=sim_url)
    # The ml_model strategy looks its model up in this store, in whichever step process runs it.
    use_store(resources["mlflow"].tracking_uri)
    return dg.Definitions(
        assets=assets,
        jobs=list(jobs.values()),
        schedules=build_schedules(config, jobs, warehouse_path=resources["warehouse"].path, configured=configured),
        sensors=build_sensors(config, list(configured), warehouse_path=resources["warehouse"].path),
        resources=resources,
    )


defs = build_defs()

"""Helpers for pipeline tests: recent partition days and in-process single-run backfills."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg

from pipelines.demo import range_tags


def recent_days(n: int) -> list[str]:
    """``n`` consecutive complete UTC days ending the day before yesterday (always partitions)."""
    today = datetime.now(timezone.utc).date()
    return [(today - timedelta(days=i)).isoformat() for i in range(n + 1, 1, -1)]


def run_job(defs: dg.Definitions, name: str, days: list[str], *, raise_on_error: bool = True):
    """Execute job ``name`` in process as one single-run backfill over ``days`` × every market."""
    job = defs.resolve_job_def(name)
    instance = dg.DagsterInstance.ephemeral()  # held here: an instance made inside can be collected mid-run
    return job.execute_in_process(
        instance=instance, tags=range_tags(job.partitions_def, days), raise_on_error=raise_on_error
    )


def config_with(**sections: object):
    """The shipped ``quantdag.yaml`` with top-level ``sections`` replaced (validated like the file)."""
    import yaml

    from quantdag.config import DEFAULT_CONFIG_PATH, parse_config

    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data.update(sections)
    return parse_config(data, source=DEFAULT_CONFIG_PATH)

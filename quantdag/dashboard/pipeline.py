"""Recent Dagster runs through the webserver's GraphQL API (no Dagster import: the dashboard runs
beside Dagster, not inside it). An unreachable webserver is a message on the page, not an error."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)

#: validated against the installed dagster-graphql schema by tests/quantdag/dashboard/test_pipeline.py
RUNS_QUERY = """query RecentRuns($limit: Int) { runsOrError(limit: $limit) { __typename
  ... on Runs { results { runId jobName status startTime endTime tags { key value } } }
  ... on PythonError { message } } }"""

SHOWN_TAGS = ("dagster/partition", "dagster/backfill", "dagster/schedule_name", "dagster/sensor_name")


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)


def recent_runs(dagster_url: str, limit: int = 30, timeout: float = 3.0) -> dict[str, Any]:
    """``{"runs": [...], "failed": n, "error": None}`` or ``{"runs": [], "error": "Dagster not reachable ..."}``."""
    url = dagster_url.rstrip("/") + "/graphql"
    body = json.dumps({"query": RUNS_QUERY, "variables": {"limit": limit}}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.load(resp)
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        log.info("Dagster at %s not reachable: %s", dagster_url, exc)
        return {"runs": [], "failed": 0, "error": f"Dagster not reachable at {dagster_url} ({type(exc).__name__})"}
    got = (answer.get("data") or {}).get("runsOrError") or {}
    if got.get("__typename") != "Runs":
        msg = got.get("message") or "; ".join(e.get("message", "") for e in answer.get("errors", [])) or "no runs"
        return {"runs": [], "failed": 0, "error": f"Dagster answered with an error: {msg[:300]}"}
    runs = []
    for r in got["results"]:
        tags = {t["key"]: t["value"] for t in r.get("tags") or []}
        runs.append({"run_id": r["runId"], "job": r["jobName"], "status": r["status"], "start": _ts(r.get("startTime")),
                     "end": _ts(r.get("endTime")), "tags": {k: v for k, v in tags.items() if k in SHOWN_TAGS}})  # fmt: skip
    return {"runs": runs, "failed": sum(r["status"] == "FAILURE" for r in runs), "error": None}

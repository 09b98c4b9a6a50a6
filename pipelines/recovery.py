"""A restart is the recovery: runs whose process died are failed and their pool slots freed.

A ``kill -9`` (or a crash) during a run leaves it ``STARTED`` holding the ``duckdb`` pool's only
slot, so every later run waits "blocked by limit for pool duckdb" forever. The warehouse itself
is safe (each stage writes in one transaction), so the cure is bookkeeping: on start, `make demo`
(and anything else that runs jobs) calls :func:`recover_orphaned_runs`, which marks every
unfinished run whose process is gone as failed and frees the slots it held. Runs launched by the
daemon are also watched by Dagster's run monitoring (``run_monitoring`` in ``pipelines/dagster.yaml``).

A run's process is known from its run-start event (Dagster stamps every event with the pid of the
process that wrote it) and the host tag we add at launch (:data:`HOST_TAG`); a run on another
host is never touched. A pid that is alive is trusted only if the process started before the run
did (otherwise the pid was reused by an unrelated process after the crash).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

import dagster as dg

log = logging.getLogger(__name__)

#: Tag recording which machine ran a run in process (the pid comes from its events).
HOST_TAG = "quantdag/host"
UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def launch_tags() -> dict[str, str]:
    """Tags to put on every run started in this process, so a later start can judge it."""
    return {HOST_TAG: socket.gethostname()}


def _process_started_at(pid: int) -> float | None:
    """Epoch seconds at which ``pid`` started, None if there is no such process (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0  # alive, start time unknown: assume it is the run's


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, limit=50).records
    for r in records:
        event = r.event_log_entry.dagster_event
        if event is not None and event.pid is not None:
            return int(event.pid)
    return None


@dataclass(frozen=True)
class Recovered:
    """One run failed by :func:`recover_orphaned_runs`."""

    run_id: str
    job_name: str
    pid: int | None
    reason: str


def recover_orphaned_runs(instance: dg.DagsterInstance, *, grace_seconds: float = 5.0) -> list[Recovered]:
    """Fail every unfinished run of this host whose process is gone, and free its pool slots.

    ``grace_seconds``: a run created this recently with no event yet is left alone (it is starting).
    """
    host = socket.gethostname()
    out: list[Recovered] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        if run.tags.get(HOST_TAG, host) != host:
            continue
        record = instance.get_run_record_by_id(run.run_id)
        created = record.create_timestamp.timestamp() if record is not None else 0.0
        pid = _run_pid(instance, run.run_id)
        if pid is None:
            if time.time() - created < grace_seconds:
                continue
            reason = "no process ever reported for it"
        else:
            started = _process_started_at(pid)
            if started is not None and started <= created + 1.0:
                continue  # still running
            reason = f"its process {pid} is gone" if started is None else f"pid {pid} now belongs to another process"
        message = f"run {run.run_id} of {run.job_name} was left {run.status.value}: {reason}; marked failed on restart"
        instance.report_run_failed(run, message=message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log.warning(message)
        out.append(Recovered(run.run_id, run.job_name, pid, reason))
    return out

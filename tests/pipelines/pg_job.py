"""A run worker: runs of pipeline jobs with the multiprocess executor, as a deployment's run worker does.

``python pg_job.py`` imports the code location, starts the executor's fork server (step processes are
forked from it, the code location already imported: spawning each step from scratch costs ~4 s of
imports on a 2-core machine), prints ``ready``, then runs one request per line of stdin and prints
``done RUN_ID SUCCESS`` after each:

    {"job": "daily_data_job", "tags": {...}}      a new run with these tags
    {"job": "daily_data_job", "resume": RUN_ID}   the re-execution of a failed run from its failure

Everything comes from the environment, as in a deployment: ``DAGSTER_HOME`` (the instance, e.g.
PostgreSQL with ``QUANTDAG_PG_PASSWORD``), ``QUANTDAG_CONFIG`` (the simulator's url included) and
``QUANTDAG_DATA_DIR``. Each step process rebuilds its job from this file.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import sys
import warnings

import dagster as dg

warnings.filterwarnings("ignore")
PRELOAD = ["dagster._core.executor.multiprocess", "pipelines.definitions"]
#: The multiprocess executor with its steps forked from the preloaded server.
RUN_CONFIG = {"execution": {"config": {"multiprocess": {"start_method": {"forkserver": {"preload_modules": PRELOAD}}}}}}


def _job(name: str) -> dg.JobDefinition:
    from pipelines.definitions import build_defs

    return build_defs().resolve_job_def(name)


def daily_data_job() -> dg.JobDefinition:
    return _job("daily_data_job")


def backtest_job() -> dg.JobDefinition:
    return _job("backtest_job")


def run(instance: dg.DagsterInstance, request: dict) -> dg.ExecutionResult:
    from pipelines.recovery import launch_tags

    recon = dg.reconstructable({"daily_data_job": daily_data_job, "backtest_job": backtest_job}[request["job"]])
    if "resume" in request:  # the parent's partitions are its tags, which execute_job does not copy (the UI does)
        parent = instance.get_run_by_id(request["resume"])
        tags = {k: v for k, v in parent.tags.items() if k.startswith(("dagster/partition", "dagster/asset_partition_range"))}
        options = dg.ReexecutionOptions.from_failure(parent.run_id, instance)
        return dg.execute_job(recon, instance=instance, run_config=RUN_CONFIG, tags={**tags, **launch_tags()},
                              reexecution_options=options, raise_on_error=False)
    return dg.execute_job(recon, instance=instance, run_config=RUN_CONFIG, tags={**request["tags"], **launch_tags()},
                          raise_on_error=False)


if __name__ == "__main__":
    import pipelines.definitions  # noqa: F401  (the code location, as the fork server will have it)

    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()
    with dg.DagsterInstance.get() as instance:
        print("ready", flush=True)
        for line in sys.stdin:
            result = run(instance, json.loads(line))
            print(f"done {result.run_id} {result.success}", flush=True)

"""A one-asset job in pool ``duckdb`` for the crash tests: it sleeps while holding the pool's slot."""

import sys
import time

import dagster as dg


@dg.asset(pool="duckdb")
def holds_the_pool(context: dg.AssetExecutionContext) -> None:
    """Sleeps as long as the run's ``sleep`` tag says."""
    time.sleep(float(context.run.tags.get("sleep", "0")))


job = dg.define_asset_job("crash_job", selection=[holds_the_pool])
defs = dg.Definitions(assets=[holds_the_pool], jobs=[job])


if __name__ == "__main__":  # python crash_job.py SLEEP: one run in the instance of $DAGSTER_HOME
    from pipelines.recovery import launch_tags

    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("crash_job").execute_in_process(
            instance=instance, tags={"sleep": sys.argv[1], **launch_tags()}
        )
    print("done", result.success, flush=True)

"""What `make demo` does for market data, run in forked processes for the kill -9 matrix (test_kill_matrix.py).

python kill_matrix_job.py SIM_URL: imports the code location and warms Dagster's execution once,
prints ``ready``, then for each stdin line ``DATA_DIR DAY[,DAY...]`` forks a child in a session (process
group) of its own. The child prints ``started PID``, builds the definitions over DATA_DIR and, in the
instance of DATA_DIR/dagster_home (settings copied from pipelines/dagster.yaml), fails the runs a killed
process left behind and runs ``daily_data_job`` as one backfill over the days still missing (then heals
pending refetches), as ``pipelines.demo`` does, printing ``done`` on success. Once the child is gone
(finished or SIGKILLed) the worker prints ``exit CODE``. Every run is a process of its own, killed as a
crash would be; only the imports (several seconds of CPU each, more than a run) happen once, as
``pg_job.py``'s fork server does. Nothing here opens DuckDB, an instance or a thread before forking.
"""

import os
import sys
import warnings
from pathlib import Path

import dagster as dg


def run(data_dir: Path, days: list[str], sim_url: str, config) -> None:
    """The child's work: what the pre-warmed worker process of one kill point did after ``go``."""
    from pipelines.definitions import build_defs
    from pipelines.demo import refetch_days, run_job
    from pipelines.instance import write_instance_yaml
    from pipelines.recovery import recover_orphaned_runs

    home = data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    write_instance_yaml(home, config)
    os.environ["DAGSTER_HOME"] = str(home)
    defs = build_defs(data_dir, config=config, sim_url=sim_url)
    with dg.DagsterInstance.get() as instance:
        for r in recover_orphaned_runs(instance):
            print(f"recovered {r.run_id} ({r.reason})", flush=True)
        run_job(defs, "daily_data_job", days, instance)
        heal = refetch_days(data_dir, config, days)
        if heal:
            run_job(defs, "daily_data_job", heal, instance, only_missing=False)
    print("done", flush=True)


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    import pipelines.definitions, pipelines.demo, pipelines.instance, pipelines.recovery  # noqa: F401,E401
    import ccxt, duckdb, polars  # noqa: F401,E401  (warm: what the run would import lazily)
    # ... and what each run imported itself until it was imported here (numba for the candle checks, pandera's
    # polars backend and hypothesis, the sentiment scorer, the event log and compute-log storage)
    import dagster._core.storage.local_compute_log_manager, pipelines.event_log, quantdag.data.nb  # noqa: F401,E401
    import pandera.backends.polars.container, pandera.strategies, vaderSentiment.vaderSentiment  # noqa: F401,E401
    from quantdag.config import load_config
    from tests.fork_server import serve

    sim_url = sys.argv[1]
    config = load_config()
    dg.materialize([dg.asset(lambda: None, name="warm")], instance=dg.DagsterInstance.ephemeral())
    serve(lambda args: run(Path(args[0]), args[1].split(","), sim_url, config), session=True)

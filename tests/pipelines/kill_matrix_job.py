"""What `make demo` does for market data, as a pre-warmed worker for the kill -9 matrix (test_kill_matrix.py).

python kill_matrix_job.py DATA_DIR SIM_URL: builds the definitions, prints ``ready``, then reads one
line ``DAY[,DAY...]`` from stdin and, in the instance of DATA_DIR/dagster_home
(settings copied from pipelines/dagster.yaml), fails the runs a killed process left behind and runs
``daily_data_job`` as one backfill over the days still missing (then heals pending refetches), as
``pipelines.demo`` does. Prints ``done`` on success. Warming first keeps the kill delay about the run,
not about imports and definitions.
"""

import os
import sys
import warnings
from pathlib import Path

import dagster as dg

if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    from pipelines.definitions import build_defs
    from pipelines.demo import refetch_days, run_job
    from pipelines.recovery import recover_orphaned_runs
    from quantdag.config import load_config

    data_dir, sim_url = Path(sys.argv[1]), sys.argv[2]
    config = load_config()
    home = data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    from pipelines.instance import write_instance_yaml

    write_instance_yaml(home, config)
    os.environ["DAGSTER_HOME"] = str(home)
    defs = build_defs(data_dir, config=config, sim_url=sim_url)
    import ccxt, duckdb, polars  # noqa: F401,E401  (warm: what the run would import lazily)

    dg.materialize([dg.asset(lambda: None, name="warm")], instance=dg.DagsterInstance.ephemeral())
    print("ready", flush=True)
    days = sys.stdin.readline().strip().split(",")
    with dg.DagsterInstance.get() as instance:
        for r in recover_orphaned_runs(instance):
            print(f"recovered {r.run_id} ({r.reason})", flush=True)
        run_job(defs, "daily_data_job", days, instance)
        heal = refetch_days(data_dir, config, days)
        if heal:
            run_job(defs, "daily_data_job", heal, instance, only_missing=False)
    print("done", flush=True)

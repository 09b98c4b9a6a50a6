"""Pipeline benchmark: prints ONE JSON line.

1. A 365-day x 3-market 1h backfill through raw_candles -> candles -> indicators, as one
   single-run Dagster backfill (in process, real ccxt over HTTP to the simulator, a fresh DuckDB
   file): wall time, candles/s and peak RSS. Target: < 60 s on a 2-core machine.
2. Normalization throughput (``clean_candles``) on 1M raw candles (benchmarks/normalize.py).
   Target: > 5 M candles/s.

Run: ``.venv/bin/python benchmarks/pipeline.py`` (or ``make bench``).
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

DAYS = 365
MARKETS = ("BTC/USDT:1h", "ETH/USDT:1h", "SOL/USDT:1h")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def backfill(days: int = DAYS) -> dict[str, float]:
    import dagster as dg

    from assets.partitions import day_market
    from pipelines.definitions import build_defs
    from pipelines.demo import RANGE_END, RANGE_START
    from quantdag.sim import MarketModel, SimExchange
    from resources.exchange import SIM_GENESIS_MS

    today = date.today()
    wanted = {(today - timedelta(days=i)).isoformat() for i in range(days, 0, -1)}
    keys = [k for k in day_market.get_partition_keys() if k.split("|")[0] in wanted and k.split("|")[1] in MARKETS]
    with tempfile.TemporaryDirectory() as tmp, SimExchange(MarketModel(seed=7, genesis_ms=SIM_GENESIS_MS)) as sim:
        defs = build_defs(tmp, sim_url=sim.url)
        job = defs.resolve_job_def("daily_data_job")
        t0 = time.perf_counter()
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(
                instance=instance,
                tags={RANGE_START: min(keys), RANGE_END: max(keys)},
            )
        seconds = time.perf_counter() - t0
        assert result.success
        wh = defs.resources["warehouse"].get()
        n = int(
            wh.query(
                "SELECT count(*) AS n FROM market.candles WHERE symbol || ':' || timeframe IN (?, ?, ?)", list(MARKETS)
            )["n"][0]
        )
        n_ind = int(wh.query("SELECT count(*) AS n FROM features.indicators")["n"][0])
    return {"backfill_days": days, "backfill_markets": len(MARKETS), "backfill_candles": n,
            "backfill_indicator_rows": n_ind, "backfill_s": round(seconds, 2),
            "backfill_candles_per_s": round(n / seconds, 1)}


def main() -> None:
    logging.disable(logging.WARNING)
    out: dict[str, object] = {"benchmark": "pipeline"}
    out.update(backfill())
    out["backfill_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "normalize.py")], capture_output=True, text=True, check=True
    )
    out.update({f"normalize_{k}": v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()})
    out["backfill_target_s"] = 60
    out["normalize_target_candles_per_s"] = 5_000_000
    print(json.dumps(out))


if __name__ == "__main__":
    main()

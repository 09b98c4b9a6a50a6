"""Paper cycles for test_kill_matrix_paper: each a 3-symbol rebalance, then 4 TWAP-like children.

argv: root api_url. The worker imports once and prints ``ready``; then, for each stdin line
``DB KILL_AT``, it forks a child that runs one cycle on that DuckDB file (the k-th lifecycle step
gets SIGKILL; 0: never) and prints ``STEP n name`` per step and ``DONE n`` at the end; once the child
is gone the worker prints ``EXIT code`` (``-9``: killed). Every cycle is a process of its own, which
opens its own DuckDB connection and exchange client and dies as a crash would; only the imports (several
seconds on a loaded 2-core machine, against about a second for the cycle) are done once, as
pipelines' ``pg_job.py`` does with its fork server."""

import os
import signal
import sys

sys.path.insert(0, sys.argv[1])

from tests.fork_server import serve  # noqa: E402
from tests.quantdag.execution.conftest import make_oms  # noqa: E402


class Sim:  # what make_oms needs of a SimExchange
    api_url = sys.argv[2]


TARGETS = {"BTC/USDT": 0.05, "ETH/USDT": 0.5, "SOL/USDT": 5.0}
DECISION_TS = 1_700_000_000_000


def cycle(db: str, kill_at: int) -> None:
    seen = {"n": 0}

    def hook(step: str) -> None:
        seen["n"] += 1
        print(f"STEP {seen['n']} {step}", flush=True)
        if seen["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    with make_oms(Sim, db, hook=hook, strategy="killmx") as oms:
        oms.run_cycle(TARGETS, decision_ts_ms=DECISION_TS)
        for i in range(4):
            oms.submit("BTC/USDT", "sell", 0.002, intent=f"twap-{DECISION_TS}:{i}", parent_id=f"twap-{DECISION_TS}")
    print("DONE", seen["n"], flush=True)


serve(lambda args: cycle(args[0], int(args[1])), exit_word="EXIT")

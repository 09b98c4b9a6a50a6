"""One paper cycle for test_kill_matrix_paper: a 3-symbol rebalance, then 4 TWAP-like children.

argv: root api_url db kill_at (the k-th lifecycle step gets SIGKILL; 0: never). Prints DONE and the
number of lifecycle steps seen."""

import os
import signal
import sys

sys.path.insert(0, sys.argv[1])

from tests.quantdag.execution.conftest import make_oms  # noqa: E402


class Sim:  # what make_oms needs of a SimExchange
    api_url = sys.argv[2]


DB, KILL_AT = sys.argv[3], int(sys.argv[4])
TARGETS = {"BTC/USDT": 0.05, "ETH/USDT": 0.5, "SOL/USDT": 5.0}
DECISION_TS = 1_700_000_000_000
seen = {"n": 0}


def hook(step: str) -> None:
    seen["n"] += 1
    print(f"STEP {seen['n']} {step}", flush=True)
    if seen["n"] == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


with make_oms(Sim, DB, hook=hook, strategy="killmx") as oms:
    oms.run_cycle(TARGETS, decision_ts_ms=DECISION_TS)
    for i in range(4):
        oms.submit("BTC/USDT", "sell", 0.002, intent=f"twap-{DECISION_TS}:{i}", parent_id=f"twap-{DECISION_TS}")
print("DONE", seen["n"], flush=True)

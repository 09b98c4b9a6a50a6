"""kill -9 at 10 seeded points of a paper cycle (3-symbol rebalance + 4 child orders, real processes,
one DuckDB file per kill point, the simulator's signed order endpoints through ccxt): the next run
takes over the dead holder's lease, reconciles and finishes the cycle without help; no client order
id reaches the venue twice, nothing is left non-terminal, and the store's positions and balances
equal the venue's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from quantdag.execution import OrderStatus, positions_from_fills
from quantdag.sim.orders import ORDER_PATH, install_orders

from .conftest import API_KEY, SECRET, START, make_oms

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("kill_matrix_worker.py")
SEED, N_KILLS = 20_261_202, 10


class Worker:
    """``kill_matrix_worker.py``: imports once, then forks one process per cycle (the imports cost more than a cycle)."""

    def __init__(self, sim, err_file: Path) -> None:
        self.err_file, self.err_seen = err_file, 0
        self.proc = subprocess.Popen([sys.executable, str(WORKER), str(ROOT), sim.api_url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err_file.open("w"), text=True, bufsize=1,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
        self._expect("ready")

    def _stderr(self) -> str:
        text = self.err_file.read_text()
        new, self.err_seen = text[self.err_seen:], len(text)
        return new

    def _expect(self, prefix: str) -> list[str]:
        lines = []
        while (line := self.proc.stdout.readline()) and not line.startswith(prefix):
            lines.append(line)
        assert line, f"the worker ended before {prefix!r}: {''.join(lines)}{self._stderr()[-3000:]}"
        return [*lines, line]

    def run(self, db: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
        """One cycle on ``db`` in a process of its own, SIGKILLed at lifecycle step ``kill_at`` (0: never)."""
        self.proc.stdin.write(f"{db} {kill_at}\n")
        self.proc.stdin.flush()
        *out, end = self._expect("EXIT ")
        return subprocess.CompletedProcess(self.proc.args, int(end.split()[1]), "".join(out), self._stderr())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _fresh_account(sim):
    sim.faults = None
    return install_orders(sim, api_key=API_KEY, secret=SECRET, balances=START)


def _check(sim, acct, db, expected_cids, label):
    oms = make_oms(sim, db, persistent=False, strategy="killmx")
    report = oms.reconcile()
    assert report.balance_mismatches == [] and report.foreign_fills == [] and report.foreign_open_orders == [], \
        (label, report)
    orders = oms.store.orders()
    assert {o.client_order_id for o in orders} == expected_cids, label  # every intent of the cycle was decided
    assert all(o.status.terminal for o in orders), (label, [(o.intent, o.status) for o in orders])
    counts = {c: n for c, n in acct.count_by_client_id().items() if c in expected_cids}
    assert set(acct.count_by_client_id()) <= expected_cids, label
    assert max(counts.values()) == 1, (label, counts)  # no duplicate at the venue
    posts: dict[str, int] = {}
    for r in sim.requests:
        cid = r.params.get("newClientOrderId")
        if r.method == "POST" and r.path == ORDER_PATH and cid in expected_cids:
            posts[cid] = posts.get(cid, 0) + 1
    assert max(posts.values()) == 1, (label, posts)  # never sent twice
    booked = {o.client_order_id for o in orders if o.status is OrderStatus.FILLED}
    assert booked == set(counts), (label, [(o.intent, o.status, o.reason) for o in orders], counts)
    # an intent without a venue order may only be one written ahead and killed before its send
    lost = [o for o in orders if o.client_order_id not in counts]
    assert all(o.status is OrderStatus.REJECTED and "not found" in (o.reason or "") for o in lost), label
    assert not [o for o in acct.orders() if o["status"] in ("NEW", "PARTIALLY_FILLED")], label
    pos = oms.positions()
    ledger = positions_from_fills(oms.store.fills())
    bal = acct.balances()
    for sym, base in (("BTC/USDT", "BTC"), ("ETH/USDT", "ETH"), ("SOL/USDT", "SOL")):
        venue = sum(bal.get(base, (0.0, 0.0))) - START.get(base, 0.0)
        have = pos[sym].qty if sym in pos else 0.0
        assert have == pytest.approx(venue, abs=1e-9), (label, sym, have, venue)
        assert have == pytest.approx(ledger[sym].qty if sym in ledger else 0.0, abs=1e-12), (label, sym)
    return orders, counts


@pytest.mark.slow
def test_kill_9_at_10_seeded_points_of_a_paper_cycle_next_run_completes(order_sim, tmp_path):
    worker = Worker(order_sim, tmp_path / "worker.err")
    try:
        # a clean cycle: how many lifecycle steps it has, and which client order ids it decides
        acct = _fresh_account(order_sim)
        clean_db = tmp_path / "clean.duckdb"
        clean = worker.run(clean_db, 0)
        assert clean.returncode == 0 and "DONE" in clean.stdout, clean.stderr[-3000:]
        total = int(clean.stdout.split("DONE")[1].split()[0])
        oms = make_oms(order_sim, clean_db, persistent=False, strategy="killmx")
        expected = {o.client_order_id for o in oms.store.orders()}
        oms.store.close()
        assert len(expected) == 7 and total >= 2 * N_KILLS, (expected, total)
        orders, counts = _check(order_sim, acct, clean_db, expected, "clean")
        assert len(counts) == 7 and all(o.status is OrderStatus.FILLED for o in orders)

        points = sorted(random.Random(SEED).sample(range(1, total + 1), N_KILLS))
        outcomes = []
        for k in points:
            acct = _fresh_account(order_sim)  # balances do not carry over between kill points
            order_sim.clear_requests()
            db = tmp_path / f"kill_{k}.duckdb"
            killed = worker.run(db, k)
            label = f"kill at step {k}/{total}"
            assert killed.returncode == -signal.SIGKILL, (label, killed.stdout[-1000:], killed.stderr[-3000:])
            step = killed.stdout.strip().splitlines()[-1]
            assert step.startswith(f"STEP {k} "), (label, step)
            again = worker.run(db, 0)  # no help: same cycle again, the dead holder's lease taken over
            assert again.returncode == 0 and "DONE" in again.stdout, (label, again.stderr[-3000:])
            _, counts = _check(order_sim, acct, db, expected, f"{label} ({step})")
            outcomes.append((k, step.split()[2], len(counts)))
    finally:
        order_sim.faults = None
        worker.close()
    print("kill points:", outcomes)
    assert len({name for _, name, _ in outcomes}) >= 3  # spread over different lifecycle steps

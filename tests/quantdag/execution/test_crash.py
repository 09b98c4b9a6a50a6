"""kill -9 of the order manager at each lifecycle step; a fresh one reconciles: positions = fill ledger, no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quantdag.execution import OrderStatus, positions_from_fills
from quantdag.sim.orders import ORDER_PATH

from .conftest import START, make_oms

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from tests.quantdag.execution.conftest import make_oms
    class Sim:  # what make_oms needs of a SimExchange
        api_url = {api_url!r}
    step, nth = {step!r}, {nth!r}
    seen = {{"n": 0}}
    def hook(name):
        if name == step:
            seen["n"] += 1
            if seen["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)
    oms = make_oms(Sim, {db!r}, hook=hook)
    oms.reconcile()
    for i, (sym, side, qty) in enumerate([("BTC/USDT", "buy", 0.01), ("BTC/USDT", "buy", 0.02), ("BTC/USDT", "sell", 0.005)]):
        oms.submit(sym, side, qty, intent=f"crash-{{i}}")
    rest = oms.submit("BTC/USDT", "sell", 0.01, intent="crash-rest", type="limit", limit_price=10_000_000.0)
    oms.cancel(rest.client_order_id)
    print("DONE")
""")

STEPS = ["after_write_ahead", "after_ambiguous_send", "after_send", "after_ack_stored", "fills_inserted",
         "after_fills_stored", "before_cancel_send", "after_cancel_send"]


def _run(sim, db, step, nth):
    code = SCRIPT.format(root=str(ROOT), api_url=sim.api_url, step=step, nth=nth, db=str(db))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_then_reconcile(order_sim, account, tmp_path, step):
    db = tmp_path / f"crash_{step}.duckdb"
    order_sim.clear_requests()
    if step == "after_ambiguous_send":
        account.lose_responses(1, mode="server_error")  # 2nd order: booked, answer lost, then killed
    killed = _run(order_sim, db, step, 1 if step in ("after_ambiguous_send", "before_cancel_send", "after_cancel_send") else 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # a fresh process runs the same decisions again: reconcile first, then the same intents
    again = _run(order_sim, db, "never", 1)
    assert again.returncode == 0 and "DONE" in again.stdout, again.stderr[-2000:]
    oms = make_oms(order_sim, db)
    oms.reconcile()
    counts = account.count_by_client_id()
    posts: dict[str, int] = {}
    for r in order_sim.requests:
        if r.method == "POST" and r.path == ORDER_PATH and r.params.get("newClientOrderId") in counts:
            posts[r.params["newClientOrderId"]] = posts.get(r.params["newClientOrderId"], 0) + 1
    assert counts and max(counts.values()) == 1, counts
    assert max(posts.values()) == 1, posts
    orders = oms.store.orders()
    assert len(orders) == 4 and all(o.status.terminal for o in orders), [(o.intent, o.status) for o in orders]
    rest = next(o for o in orders if o.intent == "crash-rest")
    assert rest.status is OrderStatus.CANCELED and rest.filled_qty == 0
    assert not [o for o in account.orders() if o["status"] in ("NEW", "PARTIALLY_FILLED")]  # nothing left open
    ledger = positions_from_fills(oms.store.fills())
    pos = oms.positions()
    assert pos["BTC/USDT"].qty == pytest.approx(ledger["BTC/USDT"].qty)
    # the exchange agrees: the account's BTC moved by exactly the position
    free, locked = account.balances()["BTC"]
    assert free + locked - START["BTC"] == pytest.approx(pos["BTC/USDT"].qty, abs=1e-9)
    booked = [o for o in orders if o.status in (OrderStatus.FILLED, OrderStatus.CANCELED)]
    assert {o.client_order_id for o in booked} == set(counts)

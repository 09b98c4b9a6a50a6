"""Two order managers on one account: a client order id is sent only by the process whose insert
created it, and an account lease lets one manager trade an account at a time (real processes, one
DuckDB file, the simulator's signed order endpoints through ccxt)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from quantdag.execution import Order, OrderStatus, OrderStore, OrderType, Side
from quantdag.sim.orders import ORDER_PATH
from quantdag.store import Warehouse

from .conftest import make_oms

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.quantdag.execution.conftest import make_oms
    class Sim:  # what make_oms needs of a SimExchange
        api_url = {api_url!r}
    oms = make_oms(Sim, {db!r}, persistent=False, strategy="race")
    oms.reconcile()
    gate = Path({gate!r})
    for i in range({n}):
        (gate / f"ready-{me}-{{i}}").touch()
        while len(list(gate.glob(f"ready-*-{{i}}"))) < {n_proc}:  # both on the same decision at once
            time.sleep(0.001)
        oms.submit("BTC/USDT", "buy", 0.001, intent=f"race-{{i}}")
    print("DONE")
""")


def _posts_by_cid(sim, cids):
    out: dict[str, int] = {}
    for r in sim.requests:
        cid = r.params.get("newClientOrderId")
        if r.method == "POST" and r.path == ORDER_PATH and cid in cids:
            out[cid] = out.get(cid, 0) + 1
    return out


def test_submit_two_processes_same_decision_one_exchange_order_per_intent(order_sim, account, tmp_path):
    db, gate, n = tmp_path / "race.duckdb", tmp_path / "gate", 40
    gate.mkdir()
    Warehouse(db).ensure_schema()
    order_sim.clear_requests()
    procs = [subprocess.Popen([sys.executable, "-c", RACER.format(root=str(ROOT), api_url=order_sim.api_url, db=str(db),
                                                                  gate=str(gate), me=k, n_proc=2, n=n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for k in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "DONE" in out, err[-3000:]
    oms = make_oms(order_sim, db, strategy="race")
    orders = oms.store.orders()
    cids = {o.client_order_id for o in orders}
    assert len(orders) == n
    posts = _posts_by_cid(order_sim, cids)
    booked = {c: k for c, k in account.count_by_client_id().items() if c in cids}
    assert sorted(posts.values()) == [1] * n, "a client order id was sent twice"
    assert sorted(booked.values()) == [1] * n, "duplicate orders on the exchange"
    oms.reconcile()
    assert all(o.status is OrderStatus.FILLED for o in oms.store.orders())
    assert oms.positions()["BTC/USDT"].qty == pytest.approx(0.001 * n)


T0 = 1_700_000_000_000


def _order(cid: str) -> Order:
    return Order(cid, "strat", "BTC/USDT", Side.BUY, 0.5, OrderType.MARKET, None, OrderStatus.SUBMITTED,
                 intent="i", ts_created=T0, ts_submitted=T0, ts_updated=T0)


@pytest.mark.parametrize("persistent", [True, False])
def test_store_claim_existing_id_returns_false_and_keeps_the_row(tmp_path, persistent):
    wh = Warehouse(tmp_path / "claim.duckdb")
    first, second = OrderStore(wh, "sim", persistent=persistent), OrderStore(wh, "sim", persistent=persistent)
    try:
        stored, mine = first.claim(_order("cid-1"))
        assert mine and stored.client_order_id == "cid-1"
        other = _order("cid-1").with_(qty=9.0, intent="other")
        again, mine2 = second.claim(other)
        assert mine2 is False and again == stored  # the stored row, untouched
        assert first.claim(_order("cid-1"))[1] is False
        assert second.get("cid-1").qty == 0.5
        assert len(first.orders()) == 1
    finally:
        first.close()
        second.close()


HOLDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests.quantdag.execution.conftest import make_oms
    class Sim:
        api_url = {api_url!r}
    oms = make_oms(Sim, {db!r}, persistent=False, lease_ttl_s={ttl!r})
    oms.__enter__()
    print("HELD", oms.store.holder, flush=True)
    for line in sys.stdin:  # "renew": try to renew; EOF: exit (releases the lease)
        try:
            oms.acquire_lease()
            print("RENEWED", flush=True)
        except Exception as exc:
            print("LOCKED", type(exc).__name__, exc, flush=True)
    oms.__exit__(None, None, None)
    print("RELEASED", flush=True)
""")


def _holder(sim, db, ttl):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), api_url=sim.api_url, db=str(db), ttl=ttl)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    line = proc.stdout.readline()
    assert line.startswith("HELD"), proc.stderr.read()[-3000:]
    return proc, line.split()[1]


def test_lease_second_manager_while_held_raises_account_locked(order_sim, account, tmp_path):
    from quantdag.execution import AccountLocked

    db = tmp_path / "lease.duckdb"
    proc, holder = _holder(order_sim, db, 600.0)
    try:
        second = make_oms(order_sim, db, persistent=False)
        with pytest.raises(AccountLocked, match="'sim'") as err:
            second.__enter__()
        assert err.value.holder == holder and err.value.account == "sim" and holder in str(err.value)
        with pytest.raises(AccountLocked):  # a manager that never asked for the lease may not trade either
            second.reconcile()
        second.reconciled = True
        with pytest.raises(AccountLocked):
            second.submit("BTC/USDT", "buy", 0.001, intent="locked-out")
        with pytest.raises(AccountLocked):
            second.run_cycle({"BTC/USDT": 0.001}, decision_ts_ms=T0)
        assert second.store.orders() == [] and not account.count_by_client_id()  # nothing written, nothing sent
    finally:
        out, err_text = proc.communicate("", timeout=60)
    assert "RELEASED" in out, err_text[-3000:]
    assert second.store.lease() is None  # released on exit
    with second:  # free now
        assert second.store.lease().holder == second.store.holder
    assert second.store.lease() is None


def test_lease_holder_silent_past_ttl_next_manager_takes_over(order_sim, account, tmp_path):
    from quantdag.execution import AccountLocked

    db = tmp_path / "lease_ttl.duckdb"
    proc, holder = _holder(order_sim, db, 1.0)
    try:
        second = make_oms(order_sim, db, persistent=False, lease_ttl_s=30.0)
        with pytest.raises(AccountLocked):
            second.acquire_lease()
        time.sleep(1.2)  # the holder is alive but silent: its lease expires
        with second:
            lease = second.store.lease()
            assert lease.holder == second.store.holder != holder
            proc.stdin.write("renew\n")
            proc.stdin.flush()
            assert proc.stdout.readline().startswith("LOCKED AccountLocked")  # the old holder lost the account
            first_expiry = lease.expires_ms
            time.sleep(0.01)
            second.run_cycle({}, decision_ts_ms=T0)  # each cycle renews
            assert second.store.lease().expires_ms > first_expiry
            out, err_text = proc.communicate("", timeout=60)  # the old holder exits...
            assert proc.returncode == 0 and "RELEASED" in out, err_text[-3000:]
            assert second.store.lease().holder == second.store.holder  # ...without releasing the new holder's lease
        assert second.store.lease() is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lease_holder_killed_next_manager_takes_over_before_expiry(order_sim, account, tmp_path):
    db = tmp_path / "lease_kill.duckdb"
    proc, _ = _holder(order_sim, db, 600.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdin.close()
    proc.stdout.close()
    proc.stderr.close()
    with make_oms(order_sim, db, persistent=False) as oms:  # holder dead on this host: no 10-minute wait
        assert oms.store.lease().holder == oms.store.holder
        oms.reconcile()
        assert oms.submit("BTC/USDT", "buy", 0.001, intent="after-kill").status is OrderStatus.FILLED


def test_submit_row_written_ahead_by_another_manager_is_polled_not_sent_not_declared_lost(order_sim, account, tmp_path):
    from quantdag.execution import client_order_id

    db = tmp_path / "theirs.duckdb"
    oms = make_oms(order_sim, db, persistent=False)  # lost_after_s=0: an unknown in-flight order would be lost at once
    oms.reconcile()
    cid = client_order_id(oms.strategy, "BTC/USDT", "theirs")
    theirs = OrderStore(Warehouse(db), "sim", persistent=False)  # another manager, about to send it
    now = int(time.time() * 1000)
    assert theirs.claim(Order(cid, oms.strategy, "BTC/USDT", Side.BUY, 0.001, OrderType.MARKET, None,
                              OrderStatus.SUBMITTED, intent="theirs", ts_created=now, ts_submitted=now,
                              ts_updated=now))[1]
    order_sim.clear_requests()
    got = oms.submit("BTC/USDT", "buy", 0.001, intent="theirs")
    assert got.client_order_id == cid and got.status is OrderStatus.SUBMITTED and got.in_flight
    assert _posts_by_cid(order_sim, {cid}) == {}  # polled, never sent
    assert oms.store.get(cid).status is OrderStatus.SUBMITTED  # its sender may still send it: not declared lost

"""The order manager over real ccxt + HTTP against the simulated exchange, with fault injection."""

from __future__ import annotations

import io
import logging
import random
import time

import pytest

from quantdag.execution import OrderStatus, Side, positions_from_fills
from quantdag.sim.orders import ORDER_PATH
from quantdag.sim.routing import Route
from quantdag.store.warehouse import Warehouse

from .conftest import API_KEY, SECRET, make_oms


def _posts(sim, cid):
    return [r for r in sim.requests if r.method == "POST" and r.path == ORDER_PATH and r.params.get("newClientOrderId") == cid]


def test_write_ahead_row_exists_before_the_request(order_sim, account, tmp_path):
    db = tmp_path / "wa.duckdb"
    oms = make_oms(order_sim, db)
    oms.reconcile()
    seen = []

    def hook(req):
        cid = req.params.get("newClientOrderId")
        rows = Warehouse(db).query("SELECT status, exchange_order_id FROM paper.orders WHERE client_order_id = ?", [cid])
        seen.append((cid, rows.rows()))
        return account.new_order(req)

    order_sim.add_route(Route("POST", ORDER_PATH, hook, 1))
    try:
        order = oms.submit("BTC/USDT", Side.BUY, 0.01, intent="wa-1")
    finally:
        order_sim.add_route(Route("POST", ORDER_PATH, account.new_order, 1))
    assert seen == [(order.client_order_id, [("submitted", None)])]
    assert order.status is OrderStatus.FILLED and order.exchange_order_id is not None
    assert oms.positions()["BTC/USDT"].qty == pytest.approx(0.01)
    # the same decision again sends nothing
    n = len(_posts(order_sim, order.client_order_id))
    assert oms.submit("BTC/USDT", Side.BUY, 0.01, intent="wa-1").client_order_id == order.client_order_id
    assert len(_posts(order_sim, order.client_order_id)) == n == 1


def test_nothing_is_sent_before_reconcile(order_sim, account, tmp_path):
    oms = make_oms(order_sim, tmp_path / "r.duckdb")
    with pytest.raises(Exception, match="reconcile"):
        oms.submit("BTC/USDT", Side.BUY, 0.01, intent="x")


@pytest.mark.parametrize("mode", ["timeout_after_accept", "server_error_after_accept", "server_error", "rate_limit",
                                  "timeout_before"])
def test_ambiguous_submit_is_resolved_by_query_never_resent(order_sim, account, tmp_path, mode):
    oms = make_oms(order_sim, tmp_path / "a.duckdb", timeout_ms=500)
    oms.reconcile()
    if mode == "timeout_after_accept":
        account.lose_responses(1, mode="timeout", delay_s=0.8)
    elif mode == "server_error_after_accept":
        account.lose_responses(1, mode="server_error")
    elif mode == "timeout_before":
        order_sim.inject("timeout", path=ORDER_PATH, delay_s=0.8)
    else:
        order_sim.inject(mode, path=ORDER_PATH, status=500) if mode == "server_error" else \
            order_sim.inject(mode, path=ORDER_PATH, retry_after_s=0.1)
    order = oms.submit("BTC/USDT", Side.BUY, 0.01, intent=f"amb-{mode}")
    cid = order.client_order_id
    assert len(_posts(order_sim, cid)) == 1  # sent exactly once
    accepted = "after_accept" in mode
    if accepted:
        assert order.status is OrderStatus.FILLED  # found by query
        assert account.count_by_client_id()[cid] == 1
    else:
        assert order.status is OrderStatus.REJECTED and "not found" in order.reason
        assert cid not in account.count_by_client_id()
    ledger = positions_from_fills(oms.store.fills())
    assert oms.positions().get("BTC/USDT", None) == ledger.get("BTC/USDT", None)


def test_insufficient_funds_and_invalid_orders_are_not_retried(order_sim, account, tmp_path):
    oms = make_oms(order_sim, tmp_path / "i.duckdb")
    oms.reconcile()
    big = oms.submit("BTC/USDT", Side.BUY, 100.0, intent="big", price=1.0)  # price only for the risk check
    assert big.status is OrderStatus.REJECTED and "insufficient" in big.reason.lower()
    bad = oms.submit("BTC/USDT", Side.BUY, 0.000001, intent="tiny", price=1.0)  # below the lot step
    assert bad.status is OrderStatus.REJECTED
    assert len(_posts(order_sim, big.client_order_id)) == 1
    assert len(_posts(order_sim, bad.client_order_id)) <= 1  # ccxt may refuse it locally (precision)
    assert account.accepted == 0


@pytest.mark.slow
def test_many_submits_under_random_faults_no_duplicates_all_resolved(order_sim, account, tmp_path):
    from quantdag.sim import FaultPlan

    rng = random.Random(20261124)
    order_sim.faults = FaultPlan.with_rates({"server_error": 0.08, "rate_limit": 0.05, "timeout": 0.04, "reset": 0.03},
                                            seed=99, path=ORDER_PATH, delay_s=0.6, retry_after_s=0.1)
    account.lose_responses(mode="timeout", probability=0.08, delay_s=0.6, seed=5)
    oms = make_oms(order_sim, tmp_path / "m.duckdb", timeout_ms=400)
    oms.reconcile()
    t0 = time.perf_counter()
    cids = []
    n = 220
    for i in range(n):
        sym = rng.choice(["BTC/USDT", "ETH/USDT"])
        side = rng.choice([Side.BUY, Side.SELL])
        qty = 0.002 if sym == "BTC/USDT" else 0.05
        cids.append(oms.submit(sym, side, qty, intent=f"many-{i}").client_order_id)
    order_sim.faults = None
    account.clear_faults()
    oms.reconcile()  # resolves whatever the faults left in flight
    elapsed = time.perf_counter() - t0
    mine = set(cids)
    posts = [r for r in order_sim.requests if r.method == "POST" and r.path == ORDER_PATH
             and r.params.get("newClientOrderId") in mine]
    per_cid: dict[str, int] = {}
    for r in posts:
        per_cid[r.params["newClientOrderId"]] = per_cid.get(r.params["newClientOrderId"], 0) + 1
    counts = account.count_by_client_id()
    assert set(counts) <= mine
    orders = {o.client_order_id: o for o in oms.store.orders()}
    assert len(set(cids)) == n
    assert max(per_cid.values()) == 1, "an order was sent twice"
    assert max(counts.values()) == 1, "duplicate order on the exchange"
    unresolved = [c for c in cids if orders[c].in_flight or not orders[c].status.terminal]
    assert unresolved == []
    # every order the exchange booked is filled in the store; every other one is rejected
    for c in cids:
        assert (orders[c].status is OrderStatus.FILLED) == (c in counts), c
    ledger = positions_from_fills(oms.store.fills())
    for sym, pos in oms.positions().items():
        assert pos.qty == pytest.approx(ledger[sym].qty)
    faults = sum(1 for r in posts if r.fault) + account.lost_responses
    print(f"\nreliability: submits={n} posts={len(posts)} booked={len(counts)} faults_on_posts={faults} "
          f"lost_responses={account.lost_responses} duplicates=0 unresolved={len(unresolved)} in {elapsed:.1f}s")
    assert faults >= 20  # the run really was faulty


def test_canary_keys_never_leak(order_sim, account, tmp_path):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("ccxt").setLevel(logging.DEBUG)
    errors = []
    try:
        from quantdag.exchange.secrets import install_log_masking
        install_log_masking()
        oms = make_oms(order_sim, tmp_path / "c.duckdb", timeout_ms=400)
        oms.client = oms.broker.client  # type: ignore[attr-defined]
        oms.broker.ex.verbose = False
        oms.reconcile()
        account.lose_responses(1, mode="timeout", delay_s=0.6)
        order_sim.inject("server_error", path=ORDER_PATH, status=503)
        oms.submit("BTC/USDT", Side.BUY, 0.01, intent="canary-1")
        oms.submit("BTC/USDT", Side.BUY, 0.01, intent="canary-2")
        o = oms.submit("BTC/USDT", Side.BUY, 1000.0, intent="canary-3", price=1.0)
        errors.append(o.reason or "")
        try:
            oms.broker.ex.secret = "wrong-secret-but-long"
            oms.broker.balances()
        except Exception as exc:  # noqa: BLE001
            import traceback
            errors.append("".join(traceback.format_exception(exc)))
        logging.getLogger("quantdag").exception("boom", exc_info=RuntimeError(f"key {API_KEY}"))
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    text = stream.getvalue() + "\n".join(errors)
    wh = Warehouse(tmp_path / "c.duckdb")
    for table in ("orders", "fills", "positions", "balances"):
        text += wh.query(f"SELECT * FROM paper.{table}").write_csv()
    logged = stream.getvalue()
    assert "X-MBX-APIKEY" in logged and "/api/v3/order" in logged  # ccxt really logged signed requests
    assert "***" in logged
    assert API_KEY not in text and SECRET not in text


def test_partial_fills_then_cancel_keep_ledger_position_and_exchange_in_step(order_sim, account, tmp_path):
    oms = make_oms(order_sim, tmp_path / "p.duckdb")
    oms.reconcile()
    book = oms.broker.ex.fetch_order_book("BTC/USDT", 100)
    best_ask, top = book["asks"][0]
    qty = round(top * 3 + 1.0, 5)  # far more than the crossing liquidity
    o = oms.submit("BTC/USDT", "buy", qty, type="limit", limit_price=best_ask, intent="partial")
    # the live book may have moved since it was read: usually partially filled, never in flight
    assert o.status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.SUBMITTED, OrderStatus.FILLED)
    assert o.exchange_order_id and not o.in_flight
    time.sleep(1.1)  # a new book second: the resting order may match again
    oms.resolve_in_flight()
    after = oms.cancel(o.client_order_id)
    assert after.status in (OrderStatus.CANCELED, OrderStatus.FILLED)  # FILLED if the market came to it
    assert (after.status is OrderStatus.FILLED) == (after.filled_qty == pytest.approx(qty))
    fills = oms.store.fills(client_order_id=o.client_order_id)
    assert sum(f.qty for f in fills) == pytest.approx(after.filled_qty)
    assert oms.positions().get("BTC/USDT", None) is None or oms.positions()["BTC/USDT"].qty == pytest.approx(
        after.filled_qty)
    oms.reconcile()  # nothing new to find
    free, locked = account.balances()["BTC"]
    assert locked == 0 and free - 5.0 == pytest.approx(after.filled_qty)
    usdt_free, usdt_locked = account.balances()["USDT"]
    assert usdt_locked == pytest.approx(0.0, abs=1e-6)
    spent = sum(f.qty * f.price + f.fee for f in fills)
    assert usdt_free == pytest.approx(1_000_000.0 - spent)


def test_vwap_parent_on_the_simulator_with_tca(order_sim, account, tmp_path):
    from quantdag.execution.algos import volume_profile, vwap_schedule
    from quantdag.execution.tca import summarise

    oms = make_oms(order_sim, tmp_path / "v.duckdb")
    oms.reconcile()
    client = oms.broker.client
    now = int(time.time() * 1000)
    history = client.fetch_candles("BTC/USDT", "1h", now - 2 * 86_400_000, now - 3_600_000)
    profile = volume_profile(history)
    sched = vwap_schedule(0.003, now, now + 1500, 3, profile, step=0.00001)
    assert round(sum(s.qty for s in sched) / 0.00001) == 300

    def candles(a, b):
        return client.fetch_candles("BTC/USDT", "1m", a // 60_000 * 60_000 - 60_000, b)

    t = oms.execute_schedule(parent_id="vwap-1", symbol="BTC/USDT", side="buy", schedule=sched, algo="vwap",
                             interval_candles=candles)
    assert t.n_children == 3 and t.filled_qty == pytest.approx(0.003)
    assert t.interval_vwap is not None and abs(t.slippage_vs_vwap_bps) < 500
    assert t.fees == pytest.approx(sum(f.fee for f in oms.store.fills()))
    assert abs(t.implementation_shortfall_bps) < 100
    oms.close()
    s = summarise(Warehouse(tmp_path / "v.duckdb"))
    assert s["algo"].to_list() == ["vwap"] and s["parents"][0] == 1


def test_reconcile_pages_through_every_fill_since_the_last_one_stored(order_sim, account, tmp_path):
    db = tmp_path / "pages.duckdb"
    oms = make_oms(order_sim, db)
    oms.reconcile()
    for i in range(3):
        oms.submit("BTC/USDT", Side.BUY, 0.001, intent=f"early-{i}")
    # these fills happen while the store does not record them (as if the process died after each send)
    late = [oms.submit("BTC/USDT", Side.BUY, 0.001, intent=f"late-{i}") for i in range(11)]
    with Warehouse(db).connect() as con:
        con.execute("DELETE FROM paper.fills WHERE client_order_id IN (SELECT client_order_id FROM paper.orders "
                    "WHERE intent LIKE 'late-%')")
    fresh = make_oms(order_sim, db)
    fresh.broker.trades_page = 4  # 1 + 11 trades since the last stored one: four pages
    before = sum(1 for r in order_sim.requests if r.path.endswith("/myTrades"))
    report = fresh.reconcile()
    pages = sum(1 for r in order_sim.requests if r.path.endswith("/myTrades")) - before
    assert report.new_fills == 11
    assert pages == 4
    assert {f.client_order_id for f in fresh.store.fills()} >= {o.client_order_id for o in late}
    assert fresh.positions()["BTC/USDT"].qty == pytest.approx(0.014)

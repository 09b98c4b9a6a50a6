"""Reconciliation checks the venue, not only the store: fills of orders never sent here (simulator,
real ccxt over HTTP, same API key)."""

from __future__ import annotations

import logging

import pytest

from quantdag.execution import OrderStatus, Side
from quantdag.store.warehouse import Warehouse

from .conftest import make_client, make_oms


def _direct_order(sim, symbol: str, side: str, qty: float, cid: str) -> dict:
    """An order placed on the venue with the same credentials, bypassing the OMS."""
    client = make_client(sim)
    client.markets()
    return client.ccxt.create_order(symbol, "market", side, qty, None, {"newClientOrderId": cid})


def test_reconcile_fill_of_order_never_sent_reported_as_foreign_and_alerted(order_sim, account, tmp_path, caplog):
    db = tmp_path / "foreign.duckdb"
    oms = make_oms(order_sim, db)
    oms.reconcile()
    mine = oms.submit("BTC/USDT", Side.BUY, 0.021, intent="own-1")
    assert mine.status is OrderStatus.FILLED
    raw = _direct_order(order_sim, "BTC/USDT", "buy", 0.006, "manual-foreign-1")
    with caplog.at_level(logging.ERROR, logger="quantdag.alerts"):
        report = oms.reconcile()
    foreign = report.foreign_fills
    assert foreign and {f.exchange_order_id for f in foreign} == {str(raw["id"])}
    assert {f.client_order_id for f in foreign} == {"manual-foreign-1"}
    assert sum(f.qty for f in foreign) == pytest.approx(0.006)
    alerts = [m for m in _alerts(caplog) if "never sent" in m]
    assert len(alerts) == 1 and "never sent" in alerts[0] and str(raw["id"]) in alerts[0]
    # not booked: the ledger and positions are ours only; the foreign fill is kept apart
    assert oms.positions()["BTC/USDT"].qty == pytest.approx(0.021)
    assert {f.client_order_id for f in oms.store.fills()} == {mine.client_order_id}
    assert {f.trade_id for f in oms.store.foreign_fills()} == {f.trade_id for f in foreign}
    # seen again by the next reconcile: still reported, alerted once only
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="quantdag.alerts"):
        again = oms.reconcile()
    assert {f.trade_id for f in again.foreign_fills} == {f.trade_id for f in foreign}
    assert [m for m in _alerts(caplog) if "never sent" in m] == []
    oms.close()
    rows = Warehouse(db).query("SELECT count(*) AS n FROM paper.foreign_fills")
    assert rows["n"][0] == len(foreign)


def test_reconcile_fill_of_own_order_with_unknown_exchange_id_booked_not_foreign(order_sim, account, tmp_path):
    db = tmp_path / "own.duckdb"
    oms = make_oms(order_sim, db)
    oms.reconcile()
    o = oms.submit("BTC/USDT", Side.BUY, 0.004, intent="own-unacked")
    with Warehouse(db).connect() as con:  # as if the ack and the fills were never stored
        con.execute("DELETE FROM paper.fills")
        con.execute("UPDATE paper.orders SET exchange_order_id = NULL, status = 'filled'")
    fresh = make_oms(order_sim, db)
    report = fresh.reconcile()
    assert report.foreign_fills == []
    assert report.new_fills >= 1
    assert {f.client_order_id for f in fresh.store.fills()} == {o.client_order_id}
    assert fresh.positions()["BTC/USDT"].qty == pytest.approx(0.004)


def _alerts(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "quantdag.alerts"]


def test_reconcile_venue_trade_behind_our_back_balance_mismatch_halts_new_orders_and_alerts(
        order_sim, account, tmp_path, caplog):
    from quantdag.errors import OrderRejected
    from quantdag.execution import RiskState

    oms = make_oms(order_sim, tmp_path / "bal.duckdb")
    assert oms.reconcile().balance_mismatches == []  # the first one takes the baseline
    assert oms.submit("BTC/USDT", Side.BUY, 0.021, intent="own-bal").status is OrderStatus.FILLED
    assert oms.reconcile().balance_mismatches == []  # our own trade is explained by the ledger
    _direct_order(order_sim, "BTC/USDT", "buy", 0.006, "manual-bal-1")
    with caplog.at_level(logging.ERROR, logger="quantdag.alerts"):
        report = oms.reconcile()
    by_asset = {m.asset: m for m in report.balance_mismatches}
    assert set(by_asset) == {"BTC", "USDT"}
    assert by_asset["BTC"].stored == pytest.approx(5.021) and by_asset["BTC"].venue == pytest.approx(5.027)
    assert by_asset["USDT"].venue < by_asset["USDT"].stored
    assert oms.risk.state is RiskState.HALTED
    assert any("balance mismatch" in a and "BTC" in a for a in _alerts(caplog))
    with pytest.raises(OrderRejected, match="halted"):
        oms.submit("BTC/USDT", Side.BUY, 0.001, intent="after-mismatch")
    assert oms.store.get(oms.store.orders()[-1].client_order_id).status is OrderStatus.REJECTED
    oms.resume()  # explicit reset by an operator
    assert oms.risk.state is RiskState.ACTIVE
    assert oms.submit("BTC/USDT", Side.BUY, 0.001, intent="after-resume").status is OrderStatus.FILLED


def test_reconcile_stored_ledger_edited_halts_until_a_matching_reconcile(order_sim, account, tmp_path, caplog):
    from quantdag.execution import RiskState

    db = tmp_path / "edit.duckdb"
    oms = make_oms(order_sim, db, persistent=False)
    oms.reconcile()
    o = oms.submit("BTC/USDT", Side.BUY, 0.021, intent="own-edit")
    with Warehouse(db).connect() as con:
        con.execute("UPDATE paper.fills SET qty = qty - 0.006 WHERE client_order_id = ? AND "
                    "trade_id = (SELECT max(trade_id) FROM paper.fills WHERE client_order_id = ?)",
                    [o.client_order_id, o.client_order_id])
    with caplog.at_level(logging.ERROR, logger="quantdag.alerts"):
        report = oms.reconcile()
    assert [(m.asset, round(m.stored, 8), round(m.venue, 8)) for m in report.balance_mismatches
            if m.asset == "BTC"] == [("BTC", 5.015, 5.021)]
    assert report.positions["BTC/USDT"].qty == pytest.approx(0.015)
    assert oms.risk.state is RiskState.HALTED and _alerts(caplog)
    summary = oms.run_cycle({}, decision_ts_ms=1)  # still mismatched: stays halted, listed in the summary
    assert summary["risk_state"] == "halted"
    assert {m["asset"] for m in summary["balance_mismatches"]} >= {"BTC"}
    with Warehouse(db).connect() as con:
        con.execute("UPDATE paper.fills SET qty = qty + 0.006 WHERE client_order_id = ? AND "
                    "trade_id = (SELECT max(trade_id) FROM paper.fills WHERE client_order_id = ?)",
                    [o.client_order_id, o.client_order_id])
    assert oms.reconcile().balance_mismatches == []
    assert oms.risk.state is RiskState.ACTIVE  # a matching reconcile lifts the balance halt


def test_reconcile_order_not_found_once_stays_in_flight_lost_only_after_n_answers_over_window(
        order_sim, account, tmp_path):
    import time

    from quantdag.sim.orders import ORDER_PATH

    db = tmp_path / "nf.duckdb"
    t0 = int(time.time() * 1000)
    now = {"t": t0}

    def manager():
        return make_oms(order_sim, db, persistent=False, timeout_ms=500, clock=lambda: now["t"],
                        lost_after_answers=3, lost_window_s=60.0)

    oms = manager()
    oms.reconcile()
    order_sim.inject("timeout", path=ORDER_PATH, delay_s=0.8)  # the order never reaches the venue
    order = oms.submit("BTC/USDT", Side.BUY, 0.001, intent="slow-venue")
    cid = order.client_order_id
    assert order.in_flight and order.status is OrderStatus.SUBMITTED  # one "not found": not lost
    assert oms.store.not_found(cid) == (1, t0)
    now["t"] = t0 + 30_000
    report = manager().reconcile()  # a restart: the count is in the store
    assert report.lost == [] and report.in_flight == [cid]
    assert oms.store.not_found(cid) == (2, t0)
    now["t"] = t0 + 45_000
    report = manager().reconcile()  # three answers, but over 45 s only
    assert report.lost == [] and report.in_flight == [cid]
    now["t"] = t0 + 61_000
    report = manager().reconcile()  # the 4th answer, 61 s after the first
    assert report.lost == [cid]
    lost = oms.store.get(cid)
    assert lost.status is OrderStatus.REJECTED and "not found" in lost.reason and "4 answers" in lost.reason
    assert cid not in account.count_by_client_id()
    # the venue shows it after all (booked late under our client id): its fills are still ours
    _direct_order(order_sim, "BTC/USDT", "buy", 0.001, cid)
    late = manager().reconcile()
    assert late.foreign_fills == [] and late.new_fills >= 1
    assert {f.client_order_id for f in oms.store.fills()} == {cid}
    assert late.positions["BTC/USDT"].qty == pytest.approx(0.001)

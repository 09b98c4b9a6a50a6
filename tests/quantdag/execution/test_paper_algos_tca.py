from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from quantdag.backtest import run
from quantdag.execution import OrderManager, OrderStatus, PaperBroker, Quote, Side
from quantdag.execution.algos import twap_schedule, volume_profile, vwap_schedule
from quantdag.execution.tca import analyse, interval_vwap, store_tca, summarise
from quantdag.execution.types import Fill
from quantdag.store.warehouse import Warehouse


def _candles(n=200, seed=3):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    ts = 1_700_000_000_000 + np.arange(n) * 3_600_000
    return pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.uniform(10, 100, n)})


def test_paper_fills_agree_with_the_backtest(tmp_path):
    c = _candles()
    entries = np.zeros(c.height, bool)
    exits = np.zeros(c.height, bool)
    entries[[10, 80]] = True
    exits[[40, 120]] = True
    res = run(c, entries, exits, fee=0.001, slippage=0.0005, fill="next_open")
    trades = res.trades
    assert trades.height == 2
    current = {"p": 0.0}
    broker = PaperBroker(lambda s: Quote(current["p"]), balances={"USDT": 1e9}, settings=res.settings)
    oms = OrderManager(Warehouse(tmp_path / "p.duckdb"), broker, strategy="agree", min_notional=0)
    oms.reconcile()
    for t in trades.iter_rows(named=True):
        for bar, side in ((t["entry_bar"], Side.BUY), (t["exit_bar"], Side.SELL)):
            current["p"] = float(c["open"][bar])
            o = oms.submit("X/USDT", side, t["size"], intent=f"{bar}-{side}", price=current["p"])
            assert o.status is OrderStatus.FILLED
            expected = t["entry_price"] if side is Side.BUY else t["exit_price"]
            assert o.avg_price == pytest.approx(expected, rel=1e-12)
    fills = oms.store.fills()
    assert sum(f.fee for f in fills) == pytest.approx(trades["fees"].sum(), rel=1e-9)
    assert oms.positions()["X/USDT"].qty == pytest.approx(0.0, abs=1e-9)
    assert oms.positions()["X/USDT"].realised_pnl - oms.positions()["X/USDT"].fees == pytest.approx(
        trades["pnl"].sum(), rel=1e-9)


def test_paper_insufficient_funds_is_rejected_not_retried(tmp_path):
    calls = []
    broker = PaperBroker(lambda s: calls.append(s) or Quote(100.0), balances={"USDT": 50.0})
    oms = OrderManager(Warehouse(tmp_path / "q.duckdb"), broker, strategy="s")
    oms.reconcile()
    o = oms.submit("X/USDT", Side.BUY, 1.0, intent="a", price=100.0)
    assert o.status is OrderStatus.REJECTED and "insufficient" in o.reason
    assert oms.submit("X/USDT", Side.BUY, 1.0, intent="a", price=100.0).status is OrderStatus.REJECTED
    assert len(calls) == 1


def test_rebalance_to_targets_is_idempotent_per_decision(tmp_path):
    broker = PaperBroker(lambda s: Quote(100.0), balances={"USDT": 10_000.0}, qty_step={"X/USDT": 0.001})
    oms = OrderManager(Warehouse(tmp_path / "r.duckdb"), broker, strategy="s")
    oms.reconcile()
    assert len(oms.rebalance({"X/USDT": 5.0}, decision_ts_ms=1)) == 1
    assert oms.rebalance({"X/USDT": 5.0}, decision_ts_ms=1) == []  # nothing left to do
    oms.rebalance({"X/USDT": 2.0}, decision_ts_ms=2)
    assert oms.positions()["X/USDT"].qty == pytest.approx(2.0)
    assert len(oms.store.orders()) == 2


def test_twap_and_vwap_schedules():
    tw = twap_schedule(1.0, 0, 3_600_000, 7, step=0.001)
    assert len(tw) == 7 and round(sum(s.qty for s in tw) / 0.001) == 1000
    assert [s.ts_ms for s in tw] == [3_600_000 * i // 7 for i in range(7)]
    assert max(s.qty for s in tw) - min(s.qty for s in tw) <= 0.001 + 1e-12
    c = pl.DataFrame({"ts": np.arange(48) * 3_600_000, "volume": [1.0 if h % 24 < 12 else 3.0 for h in range(48)]})
    prof = volume_profile(c)
    assert prof.sum() == pytest.approx(1) and prof[0] == pytest.approx(1 / 48) and prof[12] == pytest.approx(3 / 48)
    vw = vwap_schedule(0.8, 0, 24 * 3_600_000, 2, prof, step=0.001)
    assert [s.qty for s in vw] == pytest.approx([0.2, 0.6])  # 1:3 volume in the two halves


def test_tca_hand_computed_case(tmp_path):
    fills = [Fill("1", "c1", "BTC/USDT", Side.BUY, 1.0, 101.0, 0.101, "USDT", 10),
             Fill("2", "c2", "BTC/USDT", Side.BUY, 3.0, 103.0, 0.309, "USDT", 20)]
    c = pl.DataFrame({"high": [104.0, 106.0], "low": [98.0, 100.0], "close": [101.0, 103.0], "volume": [1.0, 1.0]})
    vwap = interval_vwap(c)
    assert vwap == pytest.approx((101.0 + 103.0) / 2)  # typical prices 101 and 103
    t = analyse(parent_id="p1", strategy="s", symbol="BTC/USDT", side="buy", algo="twap", parent_qty=4.0,
                arrival_price=100.0, fills=fills, n_children=2, vwap=vwap, ts_start=0, ts_end=30)
    assert t.avg_fill_price == pytest.approx(102.5)
    assert t.implementation_shortfall_bps == pytest.approx(250.0)
    assert t.slippage_vs_vwap_bps == pytest.approx(0.5 / 102 * 1e4)
    assert t.fees == pytest.approx(0.41)
    assert t.shortfall_cost == pytest.approx(2.5 * 4 + 0.41)
    wh = Warehouse(tmp_path / "t.duckdb")
    store_tca(wh, [t])
    store_tca(wh, [t])
    s = summarise(wh)
    assert s.height == 1 and s["shortfall_bps"][0] == pytest.approx(250.0) and s["parents"][0] == 1


def test_twap_parent_executes_children_and_stores_tca(tmp_path):
    from quantdag.backtest import BacktestSettings

    now = {"t": 1_000_000}
    t0 = now["t"]
    settings = BacktestSettings(fee=0.001, slippage=0.0)
    broker = PaperBroker(lambda s: Quote(100.0 + (now["t"] - t0) / 1000), balances={"USDT": 1e6}, settings=settings,
                         clock=lambda: now["t"])
    wh = Warehouse(tmp_path / "twap.duckdb")
    with OrderManager(wh, broker, strategy="s", clock=lambda: now["t"], min_notional=0) as oms:
        oms.reconcile()
        sched = twap_schedule(4.0, now["t"], now["t"] + 4000, 4, step=0.001)

        def sleep(s):
            now["t"] += int(round(s * 1000))

        t = oms.execute_schedule(parent_id="parent-1", symbol="X/USDT", side="buy", schedule=sched, algo="twap",
                                 arrival_price=99.0, sleep=sleep)
        assert t.n_children == 4 and t.filled_qty == pytest.approx(4.0)
        assert t.avg_fill_price == pytest.approx(101.5)
        assert t.implementation_shortfall_bps == pytest.approx((101.5 - 99.0) / 99.0 * 1e4)
        assert t.fees == pytest.approx(0.001 * 406.0)
        # re-running the same parent sends nothing new
        again = oms.execute_schedule(parent_id="parent-1", symbol="X/USDT", side="buy", schedule=sched, algo="twap",
                                     arrival_price=99.0, sleep=sleep)
        assert again.n_children == 4 and len(oms.store.orders()) == 4
    assert summarise(wh)["parents"][0] == 1


def test_paper_account_survives_a_restart(tmp_path):
    db = tmp_path / "restart.duckdb"
    broker = PaperBroker(lambda s: Quote(100.0), balances={"USDT": 1000.0}, settings=__import__(
        "quantdag.backtest", fromlist=["BacktestSettings"]).BacktestSettings(fee=0.0, slippage=0.0))
    with OrderManager(Warehouse(db), broker, strategy="s", min_notional=0) as oms:
        oms.reconcile()
        oms.submit("X/USDT", "buy", 3.0, intent="a", price=100.0)
    fresh = PaperBroker(lambda s: Quote(100.0), balances={"USDT": 1000.0}, settings=broker.settings)
    with OrderManager(Warehouse(db), fresh, strategy="s", min_notional=0) as oms:
        oms.reconcile()
        bal = oms.store.balances()
        assert bal["USDT"].total == pytest.approx(700.0) and bal["X"].total == pytest.approx(3.0)
        assert oms.positions()["X/USDT"].qty == pytest.approx(3.0)


def test_resting_paper_limit_orders_survive_a_restart(tmp_path):
    from quantdag.backtest import BacktestSettings

    db = tmp_path / "resting.duckdb"
    px = {"p": 100.0}
    settings = BacktestSettings(fee=0.001, slippage=0.0)

    def broker():
        return PaperBroker(lambda s: Quote(px["p"]), balances={"USDT": 1000.0}, settings=settings)

    with OrderManager(Warehouse(db), broker(), strategy="s", min_notional=0) as oms:
        oms.reconcile()
        oms.submit("X/USDT", "buy", 4.0, intent="open")
        buy = oms.submit("X/USDT", "buy", 2.0, intent="dip", type="limit", limit_price=90.0)
        sell = oms.submit("X/USDT", "sell", 3.0, intent="tp", type="limit", limit_price=120.0)
        assert buy.status is OrderStatus.SUBMITTED and sell.status is OrderStatus.SUBMITTED
        before = oms.broker.balances()
    # the process dies; a new one starts with a fresh in-memory broker
    with OrderManager(Warehouse(db), broker(), strategy="s", min_notional=0) as oms:
        report = oms.reconcile()
        assert report.lost == [] and report.in_flight == []
        assert {o.client_order_id for o in oms.store.orders([OrderStatus.SUBMITTED])} == {
            buy.client_order_id, sell.client_order_id}
        after = oms.broker.balances()
        for asset in ("USDT", "X"):  # the same funds locked as before the restart
            assert after[asset].free == pytest.approx(before[asset].free, rel=1e-12)
            assert after[asset].used == pytest.approx(before[asset].used, rel=1e-12)
        assert after["USDT"].used == pytest.approx(2.0 * 90.0 * 1.001) and after["X"].used == pytest.approx(3.0)
        # a new order gets an exchange id of its own
        new = oms.submit("X/USDT", "buy", 0.5, intent="more")
        assert new.exchange_order_id not in (buy.exchange_order_id, sell.exchange_order_id)
        # the price dips through the buy limit: it fills at its limit, after the restart
        px["p"] = 89.0
        filled = oms.resolve(oms.store.get(buy.client_order_id))
        assert filled.status is OrderStatus.FILLED and filled.avg_price == pytest.approx(90.0)
        assert oms.positions()["X/USDT"].qty == pytest.approx(6.5)
        # the sell can still be cancelled, which frees its base
        assert oms.cancel(sell.client_order_id).status is OrderStatus.CANCELED
        bal = oms.broker.balances()
        assert bal["X"].used == pytest.approx(0.0, abs=1e-12) and bal["X"].free == pytest.approx(6.5)
        assert bal["USDT"].used == pytest.approx(0.0, abs=1e-9)


def test_halted_oms_refuses_adding_orders_but_reduces_and_cancels(tmp_path):
    from quantdag.errors import OrderRejected
    from quantdag.execution import RiskEngine, RiskLimits

    px = {"p": 100.0}
    broker = PaperBroker(lambda s: Quote(px["p"]), balances={"USDT": 10_000.0})
    risk = RiskEngine(RiskLimits(max_drawdown=0.05))
    with OrderManager(Warehouse(tmp_path / "h.duckdb"), broker, strategy="s", risk=risk, min_notional=0) as oms:
        oms.reconcile()
        oms.submit("X/USDT", "buy", 50.0, intent="open")
        resting = oms.submit("X/USDT", "sell", 10.0, intent="tp", type="limit", limit_price=150.0)
        assert resting.status is OrderStatus.SUBMITTED
        assert oms.update_risk({"X/USDT": 100.0}, quote="USDT") == "active"
        px["p"] = 80.0  # equity drops ~10 %
        assert oms.update_risk({"X/USDT": 80.0}, quote="USDT") == "halted"
        refused = 0
        for i in range(200):
            try:
                oms.submit("X/USDT", "buy", 1.0, intent=f"add-{i}")
            except OrderRejected:
                refused += 1
        assert refused == 200
        assert all(o.status is OrderStatus.REJECTED for o in oms.store.orders() if o.intent.startswith("add-"))
        assert oms.cancel(resting.client_order_id).status is OrderStatus.CANCELED
        reduce = oms.submit("X/USDT", "sell", 20.0, intent="reduce")
        assert reduce.status is OrderStatus.FILLED
        assert oms.positions()["X/USDT"].qty == pytest.approx(30.0)


def test_run_cycle_summary_for_a_scheduled_job(tmp_path):
    import json

    from quantdag.execution import RiskEngine, RiskLimits

    broker = PaperBroker(lambda s: Quote(100.0), balances={"USDT": 10_000.0}, qty_step={"X/USDT": 0.001})
    db = tmp_path / "cycle.duckdb"
    with OrderManager(Warehouse(db), broker, strategy="s", risk=RiskEngine(RiskLimits(max_drawdown=0.2))) as oms:
        out = oms.run_cycle({"X/USDT": 10.0}, decision_ts_ms=1_700_000_000_000)
        assert out["orders_sent"] == 1 and out["positions"] == {"X/USDT": pytest.approx(10.0)}
        assert out["risk_state"] == "active"
        again = oms.run_cycle({"X/USDT": 10.0}, decision_ts_ms=1_700_000_000_000)
        assert again["orders_sent"] == 0
        json.dumps(out)
    wh = Warehouse(db)
    assert wh.query("SELECT count(*) AS n FROM paper.orders")["n"][0] == 1
    assert wh.query("SELECT qty FROM paper.positions")["qty"][0] == pytest.approx(10.0)
    bal = wh.query("SELECT asset, total FROM paper.balances ORDER BY asset").rows()
    assert bal[0][0] == "USDT" and bal[1] == ("X", pytest.approx(10.0))

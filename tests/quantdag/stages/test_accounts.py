"""A paper account cycle (quantdag.stages.accounts): the backtest's sizing and risk rules, a state that survives restarts."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.backtest import BacktestSettings
from quantdag.execution import PaperBroker
from quantdag.execution.brokers.paper import Quote
from quantdag.markets import Market
from quantdag.portfolio import RiskRules, run_portfolio
from quantdag.portfolio.risk_store import resume, state_of
from quantdag.stages.accounts import Execution, rebalance_account
from quantdag.store import Warehouse

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
MARKETS = [Market("sim", s, "1h") for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")]
NO_SLICING = Execution(above_notional=1e12)


def _cycle(wh, prices, weights, decision, rules, *, pending=None, fee=0.001, slippage=0.0005, account="paper:test"):
    """One cycle with a broker built from scratch, as a restarted process builds it."""
    broker = PaperBroker(lambda s: Quote(prices[s]), balances={"USDT": 10_000.0}, name=account,
                         settings=BacktestSettings(fee=fee, slippage=slippage))  # fmt: skip
    ms = int(decision.timestamp() * 1000)
    return rebalance_account(wh, broker, account=account, strategy="test", markets=MARKETS, weights=weights,
                             decision_ts_ms=ms, rules=rules, pending=pending, execution=NO_SLICING, min_notional=0.0,
                             webhook_env="QUANTDAG_TEST_NO_WEBHOOK")  # fmt: skip


def _candles(seed=3, n=60):
    rng = np.random.default_rng(seed)
    rows = []
    for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        px = rng.uniform(50, 500)
        for t in range(n):
            o = px
            px *= math.exp(rng.normal(0, 0.02))
            rows.append({"ts": T0 + timedelta(hours=t), "symbol": s, "open": o, "high": max(o, px), "low": min(o, px),
                         "close": px, "volume": 1.0})  # fmt: skip
    return pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def test_paper_sizing_equals_the_portfolio_backtests_on_the_same_candles(tmp_path):
    """Two decisions; the paper account fills each at the open the backtest fills it at: same units, same equity."""
    candles = _candles()
    d1, d2 = 10, 30
    w1 = {"BTC/USDT": 0.5, "ETH/USDT": 0.3, "SOL/USDT": 0.1}
    w2 = {"BTC/USDT": 0.1, "ETH/USDT": 0.4, "SOL/USDT": 0.4}
    weights = pl.DataFrame([{"ts": T0 + timedelta(hours=d), "symbol": s, "weight": w}
                            for d, ws in ((d1, w1), (d2, w2)) for s, w in ws.items()]).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))  # fmt: skip
    bt = run_portfolio(candles, weights, fee=0.001, slippage=0.0005, init_cash=10_000.0)
    wh = Warehouse(tmp_path / "q.duckdb")
    rules = RiskRules()
    opens = lambda t: {s: candles.filter((pl.col("symbol") == s) & (pl.col("ts") == T0 + timedelta(hours=t)))["open"][0]
                       for s in w1}  # noqa: E731
    _cycle(wh, opens(d1 + 1), w1, T0 + timedelta(hours=d1), rules)
    got = _cycle(wh, opens(d2 + 1), w2, T0 + timedelta(hours=d2), rules)
    fills = bt.trades.sort("ts", "symbol")
    units = fills.group_by("symbol").agg(pl.col("qty").sum()).sort("symbol")
    for s, u in units.iter_rows():
        assert got["positions"][s] == pytest.approx(u, abs=2e-8)  # the paper broker's lot step is 1e-8
    # the account's equity after the fills, valued at that open: the backtest's cash after them + units x open
    cash = float(bt.equity.filter(pl.col("ts") == T0 + timedelta(hours=d2 + 1))["cash"][0])
    expected = cash + sum(u * opens(d2 + 1)[s] for s, u in units.iter_rows())
    assert got["equity"] == pytest.approx(expected, rel=1e-7)


def test_between_decisions_the_account_keeps_its_units_as_the_backtest_does(tmp_path):
    """The old paper path sized on starting capital: after a fall it bought more, after a rise it sold."""
    wh = Warehouse(tmp_path / "q.duckdb")
    w = {"BTC/USDT": 0.3, "ETH/USDT": 0.3, "SOL/USDT": 0.3}
    first = _cycle(wh, {"BTC/USDT": 100.0, "ETH/USDT": 10.0, "SOL/USDT": 1.0}, w, T0, RiskRules())
    again = _cycle(wh, {"BTC/USDT": 50.0, "ETH/USDT": 20.0, "SOL/USDT": 1.0}, w, T0 + timedelta(hours=1), RiskRules(), pending=set())
    assert first["orders_sent"] == 3 and again["orders_sent"] == 0
    assert again["positions"] == first["positions"]
    moved = _cycle(wh, {"BTC/USDT": 50.0, "ETH/USDT": 20.0, "SOL/USDT": 1.0}, {**w, "ETH/USDT": 0.1},
                   T0 + timedelta(hours=2), RiskRules(), pending={"ETH/USDT"})  # fmt: skip
    assert moved["orders_sent"] == 1 and moved["positions"]["BTC/USDT"] == first["positions"]["BTC/USDT"]
    # its new ETH weight is 0.1 of the equity now (marked at today's prices), not of the starting capital
    assert moved["positions"]["ETH/USDT"] * 20.0 / moved["equity_before"] == pytest.approx(0.1, abs=1e-6)


def test_a_69_percent_fall_trips_the_drawdown_switch_at_the_first_mark_past_it_and_survives_restarts(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    rules = RiskRules(max_drawdown=0.2)
    w = {"BTC/USDT": 0.99}
    prices = {"BTC/USDT": 100.0, "ETH/USDT": 10.0, "SOL/USDT": 1.0}
    _cycle(wh, prices, w, T0, rules, fee=0.0, slippage=0.0)
    states, equities = [], []
    for k, px in enumerate(np.linspace(100, 31, 24)[1:], start=1):  # a 69 % fall, one mark per candle
        prices["BTC/USDT"] = float(px)
        got = _cycle(wh, prices, w, T0 + timedelta(hours=k), rules, pending=set(), fee=0.0, slippage=0.0)
        states.append(got["risk_state"])
        equities.append(got["equity_before"])
    peak = 10_000.0
    first_past = next(i for i, e in enumerate(equities) if (peak - e) / peak >= 0.2)
    assert states[:first_past] == ["active"] * first_past and set(states[first_past:]) == {"halted"}
    row = state_of(wh, "paper:test")
    assert row["state"] == "halted" and row["rule"] == "max_drawdown"
    events = wh.query("SELECT state, rule FROM risk.events WHERE account = 'paper:test'")
    assert events.rows() == [("halted", "max_drawdown")]
    positions = wh.query("SELECT symbol, qty FROM paper.positions WHERE broker = 'paper:test' AND qty <> 0")
    assert positions.height == 0  # flattened at the mark that tripped, nothing bought since
    # a new decision while halted adds no risk, whatever the restarts
    halted = _cycle(wh, prices, w, T0 + timedelta(hours=30), rules, pending=None, fee=0.0, slippage=0.0)
    assert halted["risk_state"] == "halted" and halted["orders_sent"] == 0
    resume(wh, "paper:test", "checked by a human", webhook_env="QUANTDAG_TEST_NO_WEBHOOK")
    back = _cycle(wh, prices, w, T0 + timedelta(hours=31), rules, pending=set(), fee=0.0, slippage=0.0)
    assert back["risk_state"] == "active" and back["orders_sent"] == 1  # a resume brings the targets back
    assert wh.query("SELECT rule FROM risk.events WHERE account = 'paper:test' ORDER BY ts")["rule"].to_list()[-1] == "manual"


def test_daily_loss_allows_only_reductions_until_the_next_utc_day(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    rules = RiskRules(daily_loss=0.05)
    prices = {"BTC/USDT": 100.0, "ETH/USDT": 10.0, "SOL/USDT": 1.0}
    _cycle(wh, prices, {"BTC/USDT": 0.5, "ETH/USDT": 0.4}, T0, rules)
    prices["BTC/USDT"] = 80.0  # -10 % on half the book: -5 % of equity (plus costs)
    got = _cycle(wh, prices, {"BTC/USDT": 0.9, "ETH/USDT": 0.1}, T0 + timedelta(hours=1), rules, pending=None)
    assert got["risk_state"] == "reducing"
    held = got["positions"]
    assert held["BTC/USDT"] * 80.0 / got["equity_before"] < 0.5  # the bigger BTC target was refused
    assert held["ETH/USDT"] * 10.0 / got["equity_before"] == pytest.approx(0.1, abs=1e-6)  # the reduction went through
    # the first mark of the next UTC day lifts it and the targets come back
    broker_ms = T0 + timedelta(days=1, hours=1)
    import quantdag.execution.brokers.paper as paper_mod

    original = paper_mod.PaperBroker.now_ms
    paper_mod.PaperBroker.now_ms = lambda self: int(broker_ms.timestamp() * 1000)
    try:
        nxt = _cycle(wh, prices, {"BTC/USDT": 0.9, "ETH/USDT": 0.1}, T0 + timedelta(days=1), rules, pending=set())
    finally:
        paper_mod.PaperBroker.now_ms = original
    assert nxt["risk_state"] == "active"
    assert nxt["positions"]["BTC/USDT"] * 80.0 / nxt["equity_before"] == pytest.approx(0.9, abs=1e-3)


def test_a_halt_by_hand_from_the_command_line_flattens_at_the_next_cycle(tmp_path, monkeypatch, capsys):
    from quantdag.portfolio.risk_store import main

    monkeypatch.setenv("QUANTDAG_DATA_DIR", str(tmp_path))
    wh = Warehouse(tmp_path / "quantdag.duckdb")
    prices = {"BTC/USDT": 100.0, "ETH/USDT": 10.0, "SOL/USDT": 1.0}
    _cycle(wh, prices, {"BTC/USDT": 0.5}, T0, RiskRules())
    assert main(["halt", "paper:test", "--reason", "exchange incident"]) == 0
    assert main(["status"]) == 0 and "halted" in capsys.readouterr().out
    got = _cycle(wh, prices, {"BTC/USDT": 0.5}, T0 + timedelta(hours=1), RiskRules(), pending=set())
    assert got["risk_state"] == "halted" and got["positions"].get("BTC/USDT", 0.0) == 0.0
    assert wh.query("SELECT reason FROM risk.events WHERE account = 'paper:test'")["reason"].to_list() == ["exchange incident"]
    assert main(["resume", "nobody"]) == 2  # an account never marked is named, nothing stored


def test_caps_and_order_rate_apply_to_the_paper_account_as_to_the_backtest(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    rules = RiskRules(max_asset=0.25, max_orders=2)
    prices = {"BTC/USDT": 100.0, "ETH/USDT": 10.0, "SOL/USDT": 1.0}
    got = _cycle(wh, prices, {"BTC/USDT": 0.6, "ETH/USDT": 0.2, "SOL/USDT": 0.1}, T0, rules)
    assert got["limits_hit"] == 1 and got["orders_sent"] == 2  # SOL, the smallest, waits for the next cycle
    assert got["positions"]["BTC/USDT"] * 100.0 / got["equity_before"] == pytest.approx(0.25, abs=1e-6)
    assert "SOL/USDT" not in got["positions"] or got["positions"]["SOL/USDT"] == 0.0
    again = _cycle(wh, prices, {"BTC/USDT": 0.6, "ETH/USDT": 0.2, "SOL/USDT": 0.1}, T0, rules,
                   pending={"BTC/USDT", "ETH/USDT", "SOL/USDT"})  # fmt: skip
    assert again["orders_sent"] == 1 and again["positions"]["SOL/USDT"] * 1.0 / again["equity_before"] == pytest.approx(0.1, abs=1e-6)


def test_resume_after_n_marks_reenters_the_paper_account_with_its_peak_rearmed(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    rules = RiskRules(max_drawdown=0.2, resume="candles", resume_after=3)
    prices = {"BTC/USDT": 100.0, "ETH/USDT": 10.0, "SOL/USDT": 1.0}
    w = {"BTC/USDT": 0.9}
    _cycle(wh, prices, w, T0, rules, fee=0.0, slippage=0.0)
    prices["BTC/USDT"] = 75.0
    tripped = _cycle(wh, prices, w, T0 + timedelta(hours=1), rules, pending=set(), fee=0.0, slippage=0.0)
    assert tripped["risk_state"] == "halted" and tripped["positions"].get("BTC/USDT", 0.0) == 0.0
    states = [_cycle(wh, prices, w, T0 + timedelta(hours=k), rules, pending=set(), fee=0.0, slippage=0.0)
              for k in (2, 3, 4)]  # fmt: skip
    assert [s["risk_state"] for s in states] == ["halted", "halted", "active"]
    assert states[-1]["positions"]["BTC/USDT"] * 75.0 / states[-1]["equity_before"] == pytest.approx(0.9, abs=1e-6)
    row = state_of(wh, "paper:test")
    assert row["peak"] == pytest.approx(states[-1]["equity_before"])  # re-armed: no trip on the old peak
    rules_hit = wh.query("SELECT rule FROM risk.events WHERE account = 'paper:test' ORDER BY ts")["rule"].to_list()
    assert rules_hit == ["max_drawdown", "resume_after_candles"]

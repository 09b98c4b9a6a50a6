"""A small but complete warehouse for the dashboard's tests: every table a page reads, written
through the project's own writers (``Warehouse.insert``, ``risk_store.mark``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from quantdag.portfolio import RiskRules, risk_store
from quantdag.store import Warehouse

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
PARAM_SET = "sma_cross-abc123"
ACCOUNT = f"paper:{PARAM_SET}"
MLFLOW_RUN = "0123456789abcdef0123456789abcdef"
DAGSTER_RUN = "11111111-2222-3333-4444-555555555555"


def candle_rows(symbol: str, n: int, start: datetime = T0, timeframe: str = "1h", step: timedelta = timedelta(hours=1)):
    rows, price = [], 100.0
    for i in range(n):
        o = price
        price = price * (1.002 if i % 3 else 0.997)
        rows.append({"exchange": "sim", "symbol": symbol, "timeframe": timeframe, "ts": start + i * step, "open": o,
                     "high": max(o, price) * 1.001, "low": min(o, price) * 0.999, "close": price, "volume": 10.0 + i,
                     "filled": False})  # fmt: skip
    return rows


def seed(path: Path) -> Warehouse:
    """Write the fixture rows into ``path`` and close every connection (the dashboard reads it read-only)."""
    wh = Warehouse(path, lock_timeout=10)
    n = 48
    with wh.transaction() as con:
        Warehouse.insert(con, "market.candles", candle_rows("BTC/USDT", n) + candle_rows("ETH/USDT", n))
        key = {"strategy": "sma_cross", "params_hash": "abc123", "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h"}
        Warehouse.insert(con, "backtest.runs", [{
            **key, "param_set": PARAM_SET, "params": json.dumps({"fast": 10, "slow": 50}),
            "data_start": T0, "data_end": T0 + timedelta(hours=n - 1), "n_candles": n, "settings": json.dumps({"fee": 0.001}),
            "final_equity": 10_450.0, "total_return": 0.045, "cagr": 0.3, "sharpe": 1.7, "sortino": 2.1, "calmar": 1.2,
            "max_drawdown": -0.031, "n_trades": 7, "win_rate": 0.57, "profit_factor": 1.4, "fees_paid": 12.5,
            "metrics": "{}", "mlflow_run_id": MLFLOW_RUN, "dagster_run_id": DAGSTER_RUN}])  # fmt: skip
        Warehouse.insert(con, "backtest.equity", [{**key, "ts": T0 + timedelta(hours=i), "equity": 10_000 + 10 * i,
                                                   "cash": 5_000.0, "position": 0.1, "drawdown": -0.001 * (i % 5)}
                                                  for i in range(n)])  # fmt: skip
        Warehouse.insert(con, "backtest.trades", [{
            **key, "trade_id": 1, "side": "long", "entry_ts": T0 + timedelta(hours=5), "exit_ts": T0 + timedelta(hours=12),
            "size": 0.5, "entry_price": 101.0, "exit_price": 103.0, "fees": 0.2, "slippage": 0.05, "pnl": 0.8,
            "trade_return": 0.0198, "exit_reason": "signal", "is_open": False}])  # fmt: skip
        Warehouse.insert(con, "signals.param_sets", [{"param_set": PARAM_SET, "strategy": "sma_cross", "params_hash": "abc123",
                                                      "params": json.dumps({"fast": 10, "slow": 50}), "source": "stored"}])  # fmt: skip
        Warehouse.insert(con, "optimize.sweeps", [{
            "strategy": "sma_cross", "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "search": "grid",
            "objective": "sharpe", "min_trades": 5, "n_evaluated": 4, "best_param_set": PARAM_SET,
            "best_params": json.dumps({"fast": 10, "slow": 50}), "best_objective": 1.7, "best_metrics": "{}", "dsr": 0.91,
            "pbo": 0.18, "search_space": "{}", "settings": "{}", "data_start": T0, "data_end": T0 + timedelta(hours=n - 1),
            "mlflow_run_id": MLFLOW_RUN, "dagster_run_id": DAGSTER_RUN}])  # fmt: skip
        Warehouse.insert(con, "optimize.results", [{
            "strategy": "sma_cross", "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "params_hash": f"h{f}{s}",
            "params": json.dumps({"fast": f, "slow": s}), "objective": f / s, "final_equity": 10_000.0, "n_trades": 6,
            "total_return": 0.01, "sharpe": f / s, "max_drawdown": -0.02, "metrics": "{}"}
            for f in (5, 10) for s in (20, 50)])  # fmt: skip
        Warehouse.insert(con, "paper.equity", [{"broker": ACCOUNT, "ts": T0 + timedelta(hours=i), "equity": 10_000 + 5 * i,
                                                "risk_state": "active", "positions": "{}"} for i in range(10)])  # fmt: skip
        Warehouse.insert(con, "paper.positions", [{"broker": ACCOUNT, "symbol": "BTC/USDT", "qty": 0.25, "avg_price": 101.5,
                                                   "realised_pnl": 3.0, "fees": 0.4, "ts": T0 + timedelta(hours=9)}])  # fmt: skip
        Warehouse.insert(con, "paper.orders", [{
            "client_order_id": "qd-open-1", "strategy": "sma_cross", "symbol": "BTC/USDT", "side": "buy", "qty": 0.1,
            "type": "limit", "price": 99.0, "status": "submitted", "filled_qty": 0.0, "fee": 0.0, "intent": "rebalance:x",
            "broker": ACCOUNT, "ts_created": T0, "ts_updated": T0 + timedelta(hours=9)}])  # fmt: skip
        Warehouse.insert(con, "paper.fills", [fill_row(1, T0 + timedelta(hours=8))])
        Warehouse.insert(con, "portfolio.runs", [{
            "portfolio": "research", "run_at": T0, "first_ts": T0, "last_ts": T0 + timedelta(hours=n - 1),
            "final_equity": 10_300.0, "total_return": 0.03, "sharpe": 1.1, "max_drawdown": -0.04, "turnover": 2.5,
            "n_trades": 12, "settings": "{}", "metrics": "{}", "mlflow_run_id": MLFLOW_RUN}])  # fmt: skip
        Warehouse.insert(con, "portfolio.equity", [{"portfolio": "research", "ts": T0 + timedelta(hours=i), "equity": 10_000 + 6 * i,
                                                    "cash": 4_000.0, "gross_exposure": 6_000.0, "net_exposure": 5_000.0}
                                                   for i in range(n)])  # fmt: skip
        Warehouse.insert(con, "portfolio.weights", [{"portfolio": "research", "strategy": PARAM_SET, "ts": T0,
                                                     "symbol": "BTC/USDT", "weight": 0.4}])  # fmt: skip
        Warehouse.insert(con, "portfolio.attribution", [{"portfolio": "research", "strategy": PARAM_SET, "symbol": "BTC/USDT",
                                                         "trading_pnl": 320.0, "fees": 15.0, "slippage": 5.0, "net_pnl": 300.0}])  # fmt: skip
        Warehouse.insert(con, "market.gaps", [{"exchange": "sim", "symbol": "ETH/USDT", "timeframe": "1h", "gap_start": T0 + timedelta(hours=3),
                                               "gap_end": T0 + timedelta(hours=4), "missing": 2, "filled": True}])  # fmt: skip
        Warehouse.insert(con, "market.events", [{"exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "event_type": "jump",
                                                 "ts_start": T0 + timedelta(hours=7), "ts_end": T0 + timedelta(hours=8),
                                                 "severity": "warning", "score": 4.2, "detail": "close moved 4.2 sigma"}])  # fmt: skip
        Warehouse.insert(con, "market.stream_events", [{"exchange": "sim", "symbol": "BTC/USDT", "channel": "ohlcv", "kind": "reconnect",
                                                        "first_ts": None, "last_ts": None, "count": 1, "detail": "silence",
                                                        "session": "s1", "seen_at": T0 + timedelta(hours=9)}])  # fmt: skip
    # the risk state through the project's own writer: a drawdown rule trips on the second mark
    rules = RiskRules(max_drawdown=0.05)
    ms = int(T0.timestamp() * 1000)
    risk_store.mark(wh, ACCOUNT, rules, 10_000.0, ms)
    risk_store.mark(wh, "portfolio:research", rules, 10_000.0, ms)
    risk_store.mark(wh, "portfolio:research", rules, 9_000.0, ms + 3_600_000)
    return wh


def fill_row(i: int, ts: datetime) -> dict:
    return {"trade_id": f"t{i}", "client_order_id": f"qd-{i}", "exchange_order_id": f"x{i}", "symbol": "BTC/USDT", "side": "buy",
            "qty": 0.25, "price": 101.5, "fee": 0.03, "fee_asset": "USDT", "broker": ACCOUNT, "ts": ts}  # fmt: skip

"""The leaderboard ranks by Sharpe only runs with enough trades, and shows every run's sample size."""

from __future__ import annotations

from datetime import datetime, timezone

from quantdag.stages.backtests import leaderboard
from quantdag.store import Warehouse

T0, T1 = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 3, 1, tzinfo=timezone.utc)


def _run(strategy: str, sharpe: float, n_trades: int) -> dict:
    return {
        "param_set": f"{strategy}-000000000000", "strategy": strategy, "params_hash": "000000000000", "params": "{}",
        "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "data_start": T0, "data_end": T1,
        "n_candles": 1416, "settings": "{}", "final_equity": 10_000.0, "total_return": 0.0, "sharpe": sharpe,
        "n_trades": n_trades, "metrics": "{}",
    }  # fmt: skip


def test_leaderboard_one_trade_sharpe_19_does_not_top_runs_with_enough_trades(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    with wh.transaction() as con:
        Warehouse.insert(con, "backtest.runs", [_run("lucky", 19.0, 1), _run("steady", 1.2, 40), _run("meh", 0.4, 12)])
    board = leaderboard(wh, min_trades=5)
    assert board["strategy"].to_list() == ["steady", "meh", "lucky"]
    assert board["ranked"].to_list() == [True, True, False]
    assert board["n_trades"].to_list() == [40, 12, 1]
    assert leaderboard(wh, min_trades=0)["strategy"][0] == "lucky"

"""Every metric pinned on a case small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantdag.backtest import run
from quantdag.backtest.metrics import compute_metrics, drawdown, returns

from .helpers import HOUR_MS, NO_COSTS, candles, flags

DAY_MS = 86_400_000


def metrics_of(
    equity, *, position=None, pnl=(), bars=(), is_open=(), ppy=3.0, bar_ms=DAY_MS, traded=0.0, fees=0.0, slip=0.0
):
    equity = np.asarray(equity, dtype=float)
    return compute_metrics(
        equity=equity,
        position=np.asarray(position if position is not None else np.zeros(equity.shape[0]), dtype=float),
        init_cash=10_000.0,
        periods_per_year=ppy,
        bar_ms=bar_ms,
        trade_pnl=np.asarray(pnl, dtype=float),
        trade_bars=np.asarray(bars, dtype=float),
        trade_open=np.asarray(is_open, dtype=bool),
        fees_paid=fees,
        slippage_paid=slip,
        traded_value=traded,
    )


# returns +10 %, -10 %, +20 % from 10,000: equity 11,000, 9,900, 11,880; P = 3 so this is one year
EQUITY = [11_000.0, 9_900.0, 11_880.0]
R = [0.1, -0.1, 0.2]
MEAN = (0.1 - 0.1 + 0.2) / 3
STD = math.sqrt(((0.1 - MEAN) ** 2 + (-0.1 - MEAN) ** 2 + (0.2 - MEAN) ** 2) / 2)


def test_metrics_returns_and_pnl_hand_case():
    m = metrics_of(EQUITY)
    np.testing.assert_allclose(returns(np.array(EQUITY), 10_000.0), R, rtol=1e-12)
    assert m["total_pnl"] == pytest.approx(1_880.0)
    assert m["total_return"] == pytest.approx(0.188)
    assert m["final_equity"] == 11_880.0


def test_metrics_cagr_volatility_sharpe_sortino_hand_case():
    m = metrics_of(EQUITY)
    assert m["years"] == pytest.approx(1.0)
    assert m["cagr"] == pytest.approx(0.188)  # one year: CAGR = total return
    assert m["volatility"] == pytest.approx(STD * math.sqrt(3))
    assert m["sharpe"] == pytest.approx(MEAN / STD * math.sqrt(3))
    downside = math.sqrt((0.0 + 0.01 + 0.0) / 3)
    assert m["sortino"] == pytest.approx(MEAN / downside * math.sqrt(3))


def test_metrics_cagr_two_years_is_geometric():
    m = metrics_of(EQUITY, ppy=1.5)  # 3 candles at 1.5 per year = 2 years
    assert m["cagr"] == pytest.approx(math.sqrt(1.188) - 1)


def test_metrics_max_drawdown_duration_and_calmar_hand_case():
    m = metrics_of(EQUITY)
    assert m["max_drawdown"] == pytest.approx(0.1)  # 11,000 -> 9,900
    assert m["max_drawdown_duration_bars"] == 1
    assert m["max_drawdown_duration_days"] == pytest.approx(1.0)
    assert m["calmar"] == pytest.approx(0.188 / 0.1)
    np.testing.assert_allclose(drawdown(np.array(EQUITY), 10_000.0), [0.0, -0.1, 0.0], atol=1e-15)


def test_metrics_drawdown_counts_start_cash_as_peak_and_unrecovered_run():
    m = metrics_of([9_000.0, 9_500.0, 8_000.0, 9_999.0], bar_ms=HOUR_MS)
    assert m["max_drawdown"] == pytest.approx(0.2)
    assert m["max_drawdown_duration_bars"] == 4  # never back above 10,000
    assert m["max_drawdown_duration_days"] == pytest.approx(4 / 24)


def test_metrics_trade_statistics_hand_case():
    pnl = [100.0, -50.0, 0.0, 30.0, 20.0, -10.0, -20.0, -5.0, 999.0]
    bars = [2, 4, 1, 3, 5, 1, 1, 7, 9]
    is_open = [False] * 8 + [True]
    m = metrics_of(EQUITY, pnl=pnl, bars=bars, is_open=is_open, bar_ms=HOUR_MS)
    assert (m["n_trades"], m["n_closed_trades"], m["n_open_trades"]) == (9, 8, 1)
    assert m["win_rate"] == pytest.approx(3 / 8)
    assert m["profit_factor"] == pytest.approx(150 / 85)
    assert m["expectancy"] == pytest.approx(65 / 8)
    assert m["max_consecutive_wins"] == 2  # 30, 20 (the zero broke the streak before)
    assert m["max_consecutive_losses"] == 3  # -10, -20, -5; the open 999 does not count
    assert m["avg_trade_duration_bars"] == pytest.approx(24 / 8)
    assert m["avg_trade_duration_days"] == pytest.approx(3 / 24)


def test_metrics_exposure_turnover_and_costs_hand_case():
    m = metrics_of(EQUITY, position=[0.0, 2.5, -1.0], traded=33_000.0, fees=12.5, slip=4.0)
    assert m["exposure"] == pytest.approx(2 / 3)
    assert m["turnover"] == pytest.approx(33_000 / np.mean(EQUITY))
    assert (m["fees_paid"], m["slippage_paid"]) == (12.5, 4.0)


def test_metrics_undefined_ratios_are_nan_not_made_up():
    m = metrics_of([10_000.0, 10_000.0, 10_000.0])
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"]) and math.isnan(m["calmar"])
    assert math.isnan(m["win_rate"]) and math.isnan(m["profit_factor"]) and math.isnan(m["expectancy"])
    assert m["max_drawdown"] == 0.0 and m["n_trades"] == 0


def test_metrics_profit_factor_infinite_with_wins_only():
    m = metrics_of(EQUITY, pnl=[5.0, 7.0], bars=[1, 1], is_open=[False, False])
    assert m["profit_factor"] == math.inf and m["win_rate"] == 1.0


def test_metrics_cagr_total_loss_is_minus_one():
    assert metrics_of([5_000.0, 0.0])["cagr"] == -1.0


def test_metrics_from_run_agree_with_trades_and_equity():
    c = candles([100, 100, 110, 121, 110, 110, 99, 99], step_ms=DAY_MS)
    res = run(c, flags(8, 0, 4), flags(8, 2, 5), **NO_COSTS)
    m = res.metrics
    assert m["periods_per_year"] == pytest.approx(365.0)  # inferred daily candles
    assert m["n_trades"] == res.trades.height == 2
    assert m["total_pnl"] == pytest.approx(res.trades["pnl"].sum())
    assert m["exposure"] == pytest.approx(np.count_nonzero(res.equity["position"].to_numpy()) / 8)
    assert m["win_rate"] == pytest.approx(0.5)  # in at 100 out at 121, in at 110 out at 99
    traded = 100 * 100 + 100 * 121 + 110 * 110 + 110 * 99
    assert m["turnover"] == pytest.approx(traded / res.equity["equity"].mean(), rel=1e-12)

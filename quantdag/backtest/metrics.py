"""Performance metrics of one backtest, each with its formula, over plain numpy arrays.

Notation: ``E_0 .. E_{n-1}`` is equity at each candle's close, ``E_{-1} = init_cash``;
``r_i = E_i / E_{i-1} - 1`` (n returns, the first against the starting cash); ``P`` is the
number of candles per year of a 24/7 market (``periods_per_year``, from the candle interval);
``std`` is the sample standard deviation (ddof = 1). Trade statistics use **closed** trades only;
the trade still open at the end counts in ``n_trades`` and ``n_open_trades`` and in the equity
metrics (marked to market), not in win rate, profit factor, expectancy, durations or streaks.

=========================== ===========================================================================
metric                      formula
=========================== ===========================================================================
total_pnl                   ``E_{n-1} - init_cash`` (quote currency)
total_return                ``E_{n-1} / init_cash - 1``
cagr                        ``(E_{n-1} / init_cash) ** (1 / years) - 1``, ``years = n / P``; -1 if ``E_{n-1} <= 0``
volatility                  ``std(r) * sqrt(P)``
sharpe                      ``mean(r) / std(r) * sqrt(P)`` (risk-free rate 0); NaN if ``std(r) == 0``
sortino                     ``mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(P)``; NaN if no negative return
max_drawdown                ``max_i (1 - E_i / max(init_cash, E_0 .. E_i))``, a positive fraction
max_drawdown_duration_bars  longest run of consecutive closes below the running peak (candles)
max_drawdown_duration_days  the same run times the candle length, in days
calmar                      ``cagr / max_drawdown``; NaN if ``max_drawdown == 0``
win_rate                    ``#(pnl > 0) / #closed``
profit_factor               ``sum(pnl > 0) / -sum(pnl < 0)``; inf with wins and no losses, NaN with neither
expectancy                  ``mean(pnl)`` per closed trade (quote currency)
avg_trade_duration_bars     ``mean(exit_bar - entry_bar)`` (candles between entry and exit fill)
avg_trade_duration_days     the same times the candle length, in days
max_consecutive_wins        longest streak of ``pnl > 0`` in exit order (a zero P&L ends both streaks)
max_consecutive_losses      longest streak of ``pnl < 0`` in exit order
exposure                    share of candles whose close finds a position open
turnover                    ``sum |units * fill price|`` over all fills ``/ mean(E)``
fees_paid, slippage_paid    sums over all fills (quote currency)
n_trades                    closed trades + the open one (if any)
=========================== ===========================================================================

An undefined ratio is NaN, never a made-up number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from quantdag.timeframes import MS_PER_DAY


def drawdown(equity: np.ndarray, init_cash: float) -> np.ndarray:
    """``E_i / max(init_cash, E_0 .. E_i) - 1`` per candle (<= 0)."""
    peak = np.maximum.accumulate(np.maximum(equity, init_cash))
    return equity / peak - 1.0


def returns(equity: np.ndarray, init_cash: float) -> np.ndarray:
    """Per-candle simple returns ``r_i = E_i / E_{i-1} - 1`` with ``E_{-1} = init_cash``."""
    prev = np.empty_like(equity)
    prev[0] = init_cash
    prev[1:] = equity[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return equity / prev - 1.0


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def _streaks(pnl: np.ndarray) -> tuple[int, int]:
    return _longest_run(pnl > 0), _longest_run(pnl < 0)


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 and math.isfinite(den) else math.nan


def compute_metrics(
    *,
    equity: np.ndarray,
    position: np.ndarray,
    init_cash: float,
    periods_per_year: float,
    bar_ms: float,
    trade_pnl: np.ndarray,
    trade_bars: np.ndarray,
    trade_open: np.ndarray,
    fees_paid: float,
    slippage_paid: float,
    traded_value: float,
) -> dict[str, Any]:
    """All metrics of the module docstring as a flat dict of floats and ints.

    Parameters
    ----------
    equity, position
        Per-candle equity and signed position at each close.
    init_cash
        Starting cash (``E_{-1}``).
    periods_per_year
        Candles per year (``P``).
    bar_ms
        Candle length in milliseconds (for durations in days).
    trade_pnl, trade_bars, trade_open
        Per-trade P&L, ``exit_bar - entry_bar`` and open flag, in exit order.
    fees_paid, slippage_paid, traded_value
        Totals over all fills.
    """
    n = equity.shape[0]
    final = float(equity[-1])
    r = returns(equity, init_cash)
    years = n / periods_per_year
    sqrt_p = math.sqrt(periods_per_year)
    std = float(np.std(r, ddof=1)) if n > 1 else math.nan
    mean = float(np.mean(r))
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    dd = drawdown(equity, init_cash)
    max_dd = float(-dd.min()) if n else 0.0
    dd_bars = _longest_run(dd < 0.0)
    if final <= 0:
        cagr = -1.0
    else:
        cagr = (final / init_cash) ** (1.0 / years) - 1.0 if years > 0 else math.nan

    closed = ~trade_open.astype(bool)
    pnl = trade_pnl[closed]
    bars = trade_bars[closed]
    n_closed = int(pnl.shape[0])
    wins = float(pnl[pnl > 0].sum())
    losses = float(-pnl[pnl < 0].sum())
    if losses > 0:
        profit_factor = wins / losses
    elif wins > 0:
        profit_factor = math.inf
    else:
        profit_factor = math.nan
    max_wins, max_losses = _streaks(pnl)
    days_per_bar = bar_ms / MS_PER_DAY

    return {
        "init_cash": float(init_cash),
        "final_equity": final,
        "total_pnl": final - init_cash,
        "total_return": final / init_cash - 1.0,
        "cagr": cagr,
        "volatility": std * sqrt_p,
        "sharpe": _ratio(mean, std) * sqrt_p,
        "sortino": _ratio(mean, downside) * sqrt_p,
        "max_drawdown": max_dd,
        "max_drawdown_duration_bars": dd_bars,
        "max_drawdown_duration_days": dd_bars * days_per_bar,
        "calmar": _ratio(cagr, max_dd),
        "n_trades": int(trade_pnl.shape[0]),
        "n_closed_trades": n_closed,
        "n_open_trades": int(trade_open.astype(bool).sum()),
        "win_rate": float((pnl > 0).sum() / n_closed) if n_closed else math.nan,
        "profit_factor": profit_factor,
        "expectancy": float(pnl.mean()) if n_closed else math.nan,
        "avg_trade_duration_bars": float(bars.mean()) if n_closed else math.nan,
        "avg_trade_duration_days": float(bars.mean()) * days_per_bar if n_closed else math.nan,
        "max_consecutive_wins": max_wins,
        "max_consecutive_losses": max_losses,
        "exposure": float(np.count_nonzero(position) / n),
        "turnover": _ratio(traded_value, float(np.mean(equity))),
        "fees_paid": float(fees_paid),
        "slippage_paid": float(slippage_paid),
        "n_candles": n,
        "periods_per_year": float(periods_per_year),
        "years": years,
    }

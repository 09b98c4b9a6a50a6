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
n_rejected                  orders the engine could not place: the sum of the three ``rejected_*`` below
rejected_size_zero          entries whose size is not positive: a zero size, one that rounds to nothing,
                            or NaN (a sizing indicator still warming up, e.g. ``atr_risk``/``vol_target``)
rejected_no_cash            entries refused because equity (the cash, as the position is flat) is not positive
rejected_volume_cap         fill attempts the volume cap (``max_volume_share``) refused entirely: the candle
                            has no volume left (zero volume, or its budget spent by an earlier fill)
n_capped_fills              fills the volume cap cut short (filled in part); not in ``n_rejected``
=========================== ===========================================================================

Rejections count attempts: an exit or a reduction the volume cap holds back stays pending and is
tried again at each fill point, counting each time; a refused or cut entry is dropped (its signal
is not retried). A signal that is no order (an entry while already in that position, an exit
while flat, a target of 0 while flat) is never a rejection. A strategy that never trades because
every order is refused shows ``n_trades == 0`` with ``n_rejected > 0``.

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


def _cagr(final: float, init_cash: float, years: float) -> float:
    if final <= 0:
        return -1.0
    return (final / init_cash) ** (1.0 / years) - 1.0 if years > 0 else math.nan


def metrics_from_stats(
    *,
    n: int,
    init_cash: float,
    periods_per_year: float,
    bar_ms: float,
    final: np.ndarray,
    mean_r: np.ndarray,
    std_r: np.ndarray,
    downside: np.ndarray,
    max_dd: np.ndarray,
    dd_bars: np.ndarray,
    n_trades: np.ndarray,
    n_open: np.ndarray,
    n_wins: np.ndarray,
    win_sum: np.ndarray,
    loss_sum: np.ndarray,
    pnl_sum: np.ndarray,
    bars_sum: np.ndarray,
    max_wins: np.ndarray,
    max_losses: np.ndarray,
    exposed: np.ndarray,
    traded: np.ndarray,
    mean_equity: np.ndarray,
    fees_paid: np.ndarray,
    slippage_paid: np.ndarray,
    rejected_size_zero: np.ndarray,
    rejected_no_cash: np.ndarray,
    rejected_volume_cap: np.ndarray,
    capped_fills: np.ndarray,
) -> dict[str, np.ndarray]:
    """The formulas of the module docstring, applied to the statistics they are made of, one
    array element per backtest. The one place those formulas live: :func:`compute_metrics`
    feeds it one backtest's statistics, the sweep kernel's summaries feed it a whole grid's
    (:func:`quantdag.optimize.grid.metrics_from_summary`), so both give the same numbers.

    ``mean_r``/``std_r``/``downside`` are the mean, sample standard deviation and downside
    deviation ``sqrt(mean(min(r, 0) ** 2))`` of the returns; ``dd_bars`` the longest drawdown
    run; the trade statistics cover closed trades (``n_trades - n_open``); ``exposed`` counts
    candles whose close finds a position; the ``rejected_*`` and ``capped_fills`` counts are
    the kernel's (``S_REJ_*``, ``S_CAPPED`` of :mod:`quantdag.backtest.enums`).
    """
    years = n / periods_per_year
    sqrt_p = math.sqrt(periods_per_year)
    days_per_bar = bar_ms / MS_PER_DAY
    m = final.shape[0]
    n_closed = n_trades - n_open
    has = n_closed > 0
    with np.errstate(divide="ignore", invalid="ignore"):

        def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
            return np.where((den != 0) & np.isfinite(den), num / den, np.nan)

        cagr = np.array([_cagr(f, init_cash, years) for f in final.tolist()], dtype=np.float64)  # Python's pow, per element
        avg_bars = np.where(has, bars_sum / n_closed, np.nan)
        return {
            "init_cash": np.full(m, float(init_cash)),
            "final_equity": final,
            "total_pnl": final - init_cash,
            "total_return": final / init_cash - 1.0,
            "cagr": cagr,
            "volatility": std_r * sqrt_p,
            "sharpe": ratio(mean_r, std_r) * sqrt_p,
            "sortino": ratio(mean_r, downside) * sqrt_p,
            "max_drawdown": max_dd,
            "max_drawdown_duration_bars": dd_bars,
            "max_drawdown_duration_days": dd_bars * days_per_bar,
            "calmar": ratio(cagr, max_dd),
            "n_trades": n_trades,
            "n_closed_trades": n_closed,
            "n_open_trades": n_open,
            "win_rate": np.where(has, n_wins / n_closed, np.nan),
            "profit_factor": np.where(loss_sum > 0, win_sum / loss_sum, np.where(win_sum > 0, np.inf, np.nan)),
            "expectancy": np.where(has, pnl_sum / n_closed, np.nan),
            "avg_trade_duration_bars": avg_bars,
            "avg_trade_duration_days": avg_bars * days_per_bar,
            "max_consecutive_wins": max_wins,
            "max_consecutive_losses": max_losses,
            "exposure": exposed / n,
            "turnover": ratio(traded, mean_equity),
            "fees_paid": fees_paid,
            "slippage_paid": slippage_paid,
            "n_rejected": rejected_size_zero + rejected_no_cash + rejected_volume_cap,
            "rejected_size_zero": rejected_size_zero,
            "rejected_no_cash": rejected_no_cash,
            "rejected_volume_cap": rejected_volume_cap,
            "n_capped_fills": capped_fills,
            "n_candles": np.full(m, n, dtype=np.int64),
            "periods_per_year": np.full(m, float(periods_per_year)),
            "years": np.full(m, years),
        }


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
    rejected_size_zero: int = 0,
    rejected_no_cash: int = 0,
    rejected_volume_cap: int = 0,
    capped_fills: int = 0,
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
    rejected_size_zero, rejected_no_cash, rejected_volume_cap, capped_fills
        Orders the kernel could not place, per reason, and fills the volume cap cut short
        (``S_REJ_SIZE``, ``S_REJ_CASH``, ``S_REJ_VOLUME``, ``S_CAPPED`` of its stats).
    """
    n = equity.shape[0]
    r = returns(equity, init_cash)
    dd = drawdown(equity, init_cash)
    closed = ~trade_open.astype(bool)
    pnl = trade_pnl[closed]
    max_wins, max_losses = _streaks(pnl)

    def one(x: Any, dtype: type = np.float64) -> np.ndarray:
        return np.array([x], dtype=dtype)

    stats = metrics_from_stats(
        n=n, init_cash=float(init_cash), periods_per_year=float(periods_per_year), bar_ms=float(bar_ms),
        final=one(equity[-1]), mean_r=one(np.mean(r)), std_r=one(np.std(r, ddof=1) if n > 1 else math.nan),
        downside=one(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))), max_dd=one(-dd.min() if n else 0.0),
        dd_bars=one(_longest_run(dd < 0.0), np.int64), n_trades=one(trade_pnl.shape[0], np.int64),
        n_open=one(np.count_nonzero(trade_open), np.int64), n_wins=one(np.count_nonzero(pnl > 0), np.int64),
        win_sum=one(pnl[pnl > 0].sum()), loss_sum=one(-pnl[pnl < 0].sum()), pnl_sum=one(pnl.sum()),
        bars_sum=one(trade_bars[closed].sum()), max_wins=one(max_wins, np.int64), max_losses=one(max_losses, np.int64),
        exposed=one(np.count_nonzero(position), np.int64), traded=one(traded_value), mean_equity=one(np.mean(equity)),
        fees_paid=one(fees_paid), slippage_paid=one(slippage_paid),
        rejected_size_zero=one(rejected_size_zero, np.int64), rejected_no_cash=one(rejected_no_cash, np.int64),
        rejected_volume_cap=one(rejected_volume_cap, np.int64), capped_fills=one(capped_fills, np.int64),
    )  # fmt: skip
    return {k: v.item() for k, v in stats.items()}

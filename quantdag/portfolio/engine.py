"""``run_portfolio``: several markets, one cash balance, target weights (issue #16's engine core).

Rules (the same as a single backtest's where they overlap): a target weight decided on candle
``t``'s close is reached at ``t + 1``'s open (the next open that market has); target units =
weight × portfolio value at that open ÷ the open price; sells before buys, so their proceeds pay
for the buys; fee and slippage on every traded notional, from the one cash balance; negative
weights are shorts (no margin model: a short's proceeds are cash). Buys that cash cannot cover
are all scaled down by the same factor and counted (``n_cut_for_cash``), never dropped silently;
an order below ``min_notional`` is skipped and counted. A candle with no weight row for a market
keeps its units. A market with no candle at a time cannot trade then and is valued at its last
close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantdag.errors import DataError
from quantdag.portfolio.nb import simulate
from quantdag.timeframes import periods_per_year

CANDLE_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume")
ATTRIBUTION_SCHEMA = {"strategy": pl.Utf8, "symbol": pl.Utf8, "trading_pnl": pl.Float64, "fees": pl.Float64,
                      "slippage": pl.Float64, "net_pnl": pl.Float64}  # fmt: skip
RISK_EVENT_SCHEMA = {"ts": pl.Datetime("ms", "UTC"), "state": pl.Utf8, "rule": pl.Utf8, "reason": pl.Utf8}


@dataclass(frozen=True)
class PortfolioResult:
    """What :func:`run_portfolio` returns."""

    final_equity: float
    equity: pl.DataFrame  # ts, equity, cash, gross_exposure, net_exposure
    positions: pl.DataFrame  # symbol, units: at the last close
    trades: pl.DataFrame  # ts, symbol, qty (signed), price (slipped), fee, notional
    metrics: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    #: strategy, symbol, trading_pnl (at mid prices), fees, slippage, net_pnl; sums to final_equity - init_cash
    attribution: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ATTRIBUTION_SCHEMA))
    #: ts and one close column per symbol (the buy-and-hold and equal-weight benchmarks of the report)
    prices: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: ts, state (active/reducing/halted), rule, reason: every trip and resume of the risk rules
    risk_events: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RISK_EVENT_SCHEMA))

    def report(self, path: str | Path) -> Path:
        """Write the portfolio tear sheet (self-contained HTML) to ``path``."""
        from quantdag.portfolio.report import write_report

        return write_report(self, path)


def _wide(frame: pl.DataFrame, grid: pl.DataFrame, symbols: list[str], value: str) -> np.ndarray:
    wide = grid.join(frame.pivot(on="symbol", index="ts", values=value), on="ts", how="left")
    return np.column_stack([wide[s].cast(pl.Float64).to_numpy() if s in wide.columns else np.full(grid.height, np.nan)
                            for s in symbols]) if symbols else np.empty((grid.height, 0))  # fmt: skip


def run_portfolio(
    candles: pl.DataFrame,
    weights: pl.DataFrame,
    *,
    fee: float = 0.001,
    slippage: float = 0.0005,
    init_cash: float = 10_000.0,
    min_notional: float = 0.0,
    timeframe: str | None = None,
) -> PortfolioResult:
    """Simulate a portfolio of ``candles`` (long: ts, symbol, OHLCV) held at ``weights`` (long: ts,
    symbol, weight) under the rules of the module docstring.

    Raises
    ------
    DataError
        A duplicate (ts, symbol) in either frame, a weight for a symbol or time with no candle, or a
        non-finite weight.
    """
    for name, frame, cols in (("candles", candles, CANDLE_COLUMNS[:2] + ("open", "close")), ("weights", weights, ("ts", "symbol", "weight"))):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(f"{name}: missing column(s) {missing}")
        dup = frame.group_by("ts", "symbol").len().filter(pl.col("len") > 1)
        if dup.height:
            raise DataError(f"{name}: {dup.height} duplicate (ts, symbol) rows, first {dup.row(0)[:2]}")
    symbols = sorted(candles["symbol"].unique().to_list())
    unknown = sorted(set(weights["symbol"].unique().to_list()) - set(symbols))
    if unknown:
        raise DataError(f"weights: symbols with no candles: {unknown}")
    orphan = weights.join(candles.select("ts", "symbol"), on=["ts", "symbol"], how="anti")
    if orphan.height:
        raise DataError(f"weights: {orphan.height} row(s) at a time with no candle of their symbol, first {orphan.row(0)[:2]}")
    if weights.height and not weights["weight"].cast(pl.Float64).is_finite().all():
        raise DataError("weights: non-finite weight")
    grid = candles.select("ts").unique().sort("ts")
    open_, close = _wide(candles, grid, symbols, "open"), _wide(candles, grid, symbols, "close")
    w = _wide(weights, grid, symbols, "weight")
    eq, cash, gross, net, units, t_bar, t_sym, t_qty, t_px, t_fee, n_cut, n_small = simulate(
        np.ascontiguousarray(open_), np.ascontiguousarray(close), np.ascontiguousarray(w),
        float(init_cash), float(fee), float(slippage), float(min_notional),
    )  # fmt: skip
    ts = grid["ts"]
    equity = pl.DataFrame({"ts": ts, "equity": eq, "cash": cash, "gross_exposure": gross, "net_exposure": net})
    trades = pl.DataFrame({
        "ts": ts.gather(t_bar) if len(t_bar) else ts.head(0), "symbol": [symbols[i] for i in t_sym],
        "qty": t_qty, "price": t_px, "fee": t_fee,
    }).with_columns(notional=(pl.col("qty").abs() * pl.col("price")))  # fmt: skip
    positions = pl.DataFrame({"symbol": symbols, "units": units})
    metrics = _metrics(eq, gross, net, trades, init_cash, _periods(ts, timeframe), n_cut, n_small)
    settings = {"fee": fee, "slippage": slippage, "init_cash": init_cash, "min_notional": min_notional, "timeframe": timeframe}
    prices = pl.DataFrame({"ts": ts, **{s: close[:, j] for j, s in enumerate(symbols)}})
    return PortfolioResult(float(eq[-1]) if len(eq) else float(init_cash), equity, positions, trades, metrics, settings,
                           prices=prices)


def _periods(ts: pl.Series, timeframe: str | None) -> float:
    if timeframe is not None:
        return periods_per_year(timeframe)
    if ts.len() < 2:
        return float("nan")
    step_ms = float(ts.diff().drop_nulls().dt.total_milliseconds().median())
    return 365.25 * 86_400_000 / step_ms


def _metrics(eq: np.ndarray, gross: np.ndarray, net: np.ndarray, trades: pl.DataFrame, init_cash: float,
             p: float, n_cut: int, n_small: int) -> dict[str, Any]:  # fmt: skip
    prev = np.concatenate(([init_cash], eq[:-1]))
    r = eq / prev - 1.0
    std = float(np.std(r, ddof=1)) if len(r) > 1 else float("nan")
    peak = np.maximum.accumulate(np.concatenate(([init_cash], eq)))[1:]
    mean_eq = float(np.mean(eq)) if len(eq) else float("nan")
    return {
        "final_equity": float(eq[-1]) if len(eq) else init_cash,
        "total_return": float(eq[-1] / init_cash - 1.0) if len(eq) else 0.0,
        "sharpe": float(np.mean(r) / std * math.sqrt(p)) if std and std > 0 else float("nan"),
        "max_drawdown": float(np.min(eq / peak - 1.0)) if len(eq) else 0.0,
        "n_trades": trades.height,
        "fees_paid": float(trades["fee"].sum()),
        "turnover": float(trades["notional"].sum() / mean_eq) if mean_eq else float("nan"),
        "avg_gross_exposure": float(np.mean(gross / eq)) if len(eq) else 0.0,
        "avg_net_exposure": float(np.mean(net / eq)) if len(eq) else 0.0,
        "n_cut_for_cash": int(n_cut),
        "n_below_min_notional": int(n_small),
    }

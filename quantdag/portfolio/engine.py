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

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest.metrics import compute_metrics
from quantdag.errors import ConfigurationError, DataError
from quantdag.portfolio.nb import COUNTERS, simulate
from quantdag.portfolio.risk import EVENT_RULES, STATE_NAMES, RiskRules, event_reason, new_state
from quantdag.timeframes import MS_PER_YEAR, candles_per_year

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
    #: ts and one equity column per strategy: its sub-ledger (its cash and units at the close)
    strategy_equity: pl.DataFrame = field(default_factory=pl.DataFrame)

    def report(self, path: str | Path) -> Path:
        """Write the portfolio tear sheet (self-contained HTML) to ``path``."""
        from quantdag.portfolio.report import write_report

        return write_report(self, path)


REBALANCE_RULES = ("signal", "daily", "weekly", "monthly", "drift")
DEFAULT_STRATEGY = "portfolio"


def _index(frame: pl.DataFrame, grid_ms: np.ndarray, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row (position of its ts in the grid) and column (its symbol) of every row of ``frame``."""
    rows = np.searchsorted(grid_ms, frame["ts"].to_physical().to_numpy())
    cols = frame["symbol"].cast(pl.Enum(symbols)).to_physical().to_numpy().astype(np.int64)
    return rows, cols


def _scatter(frame: pl.DataFrame, at: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], value: str) -> np.ndarray:
    out = np.full(shape, np.nan)
    out[at] = frame[value].cast(pl.Float64).to_numpy()
    return out


def _period_ends(grid_ms: np.ndarray, rule: str) -> np.ndarray:
    """Whether each candle is the last of its UTC day / ISO week / month."""
    days = grid_ms // 86_400_000
    if rule == "daily":
        key = days
    elif rule == "weekly":
        key = (days + 3) // 7  # 1970-01-01 was a Thursday: weeks start on Mondays
    else:
        dt = grid_ms.astype("datetime64[ms]")
        key = dt.astype("datetime64[M]").astype(np.int64)
    return np.append(key[1:] != key[:-1], True) if len(key) else np.zeros(0, dtype=bool)


def _calendar(w: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Targets held (forward-filled) and restored only at period ends: the calendar rebalance."""
    filled = w.copy()
    for t in range(1, filled.shape[0]):
        gap = np.isnan(filled[t])
        filled[t][gap] = filled[t - 1][gap]
    filled[~ends] = np.nan
    return filled


def _check_columns(candles: pl.DataFrame, weights: pl.DataFrame, keys: tuple[str, ...]) -> list[str]:
    """The sorted symbols, after the columns and symbols of both frames are checked."""
    for label, frame, cols in (("candles", candles, CANDLE_COLUMNS[:2] + ("open", "close")), ("weights", weights, keys + ("weight",))):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(f"{label}: missing column(s) {missing}")
    symbols = sorted(candles["symbol"].unique().to_list())
    unknown = sorted(set(weights["symbol"].unique().to_list()) - set(symbols))
    if unknown:
        raise DataError(f"weights: symbols with no candles: {unknown}")
    if weights.height and not weights["weight"].cast(pl.Float64).is_finite().all():
        raise DataError("weights: non-finite weight")
    return symbols


def _no_duplicates(label: str, frame: pl.DataFrame, at: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]) -> None:
    counts = np.bincount(at[0] * shape[1] + at[1], minlength=shape[0] * shape[1])
    if counts.size and counts.max() > 1:
        first = int(np.flatnonzero(counts[at[0] * shape[1] + at[1]] > 1)[0])
        raise DataError(f"{label}: {int((counts > 1).sum())} duplicate (ts, symbol) rows, first {frame.row(first)[:2]}")


def _shares(strategies: list[str], shares: dict[str, float] | None) -> np.ndarray:
    if shares is None:
        return np.full(len(strategies), 1.0 / len(strategies))
    missing = [s for s in strategies if s not in shares]
    if missing:
        raise ConfigurationError(f"shares: strategies {missing} have weights but no share")
    out = np.array([float(shares[s]) for s in strategies])
    if not (np.isfinite(out).all() and (out >= 0).all() and abs(out.sum() - 1.0) < 1e-9):
        raise ConfigurationError(f"shares must be >= 0 and sum to 1, got {shares!r}")
    return out


def run_portfolio(
    candles: pl.DataFrame,
    weights: pl.DataFrame,
    *,
    fee: float = 0.001,
    slippage: float = 0.0005,
    init_cash: float = 10_000.0,
    min_notional: float = 0.0,
    timeframe: str | None = None,
    shares: dict[str, float] | None = None,
    rebalance: str = "signal",
    drift_band: float = 0.05,
    turnover_cap: float | None = None,
    risk: RiskRules | None = None,
    name: str = DEFAULT_STRATEGY,
) -> PortfolioResult:
    """Simulate a portfolio of ``candles`` (long: ts, symbol, OHLCV) held at ``weights`` (long: ts,
    symbol, weight, and optionally strategy) under the rules of the module docstring.

    ``shares``: each strategy's share of the starting capital (default equal); ``rebalance``:
    ``signal`` (trade every weight row), ``daily``/``weekly``/``monthly`` (restore the latest
    targets at each period's last close), ``drift`` (restore them when a market's weight strays more
    than ``drift_band`` from target); ``turnover_cap``: the most one candle may trade, as a fraction
    of portfolio value (the rest follows on later candles); ``risk``: :class:`RiskRules`.

    Raises
    ------
    DataError
        A duplicate (ts, symbol[, strategy]) in either frame, a weight for a symbol or time with no
        candle, or a non-finite weight.
    ConfigurationError
        An unknown rebalance rule, bad shares, or a non-positive band or cap.
    """
    if rebalance not in REBALANCE_RULES:
        raise ConfigurationError(f"rebalance must be one of {REBALANCE_RULES}, got {rebalance!r}")
    for label, v in (("drift_band", drift_band), ("turnover_cap", turnover_cap)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ConfigurationError(f"{label} must be > 0, got {v!r}")
    has_strategy = "strategy" in weights.columns
    symbols = _check_columns(candles, weights, ("ts", "symbol", "strategy") if has_strategy else ("ts", "symbol"))
    if not has_strategy:
        weights = weights.with_columns(strategy=pl.lit(name))
    strategies = sorted(set(weights["strategy"].unique().to_list()) | set(shares or ())) or [name]  # a share without weights stays cash
    share = _shares(strategies, shares)
    risk = risk or RiskRules()
    candles = candles.with_columns(pl.col("ts").dt.cast_time_unit("ms"))
    weights = weights.with_columns(pl.col("ts").dt.cast_time_unit("ms"))
    grid_ms = candles.lazy().select(pl.col("ts").to_physical().unique()).collect().to_series().sort().to_numpy()
    grid = pl.Series("ts", grid_ms).cast(candles.schema["ts"])
    n, m = len(grid_ms), len(symbols)
    at = _index(candles, grid_ms, symbols)
    _no_duplicates("candles", candles, at, (n, m))
    open_, close = _scatter(candles, at, (n, m), "open"), _scatter(candles, at, (n, m), "close")
    w = np.full((n, len(strategies), m), np.nan)
    for k, strat in enumerate(strategies):
        part = weights.filter(pl.col("strategy") == strat) if len(strategies) > 1 else weights
        idx = _index(part, grid_ms, symbols)
        stray = (idx[0] >= n) | (grid_ms[np.minimum(idx[0], n - 1)] != part["ts"].to_physical().to_numpy())
        stray[~stray] = np.isnan(open_[idx[0][~stray], idx[1][~stray]])
        if stray.any():
            raise DataError(f"weights: {int(stray.sum())} row(s) at a time with no candle of their symbol, "
                            f"first {part.row(int(np.flatnonzero(stray)[0]))[:2]}")  # fmt: skip
        _no_duplicates(f"weights of {strat}" if has_strategy else "weights", part, idx, (n, m))
        w[:, k, :] = _scatter(part, idx, (n, m), "weight")
        if rebalance in ("daily", "weekly", "monthly"):
            w[:, k, :] = _calendar(w[:, k, :], _period_ends(grid_ms, rebalance))
    state = new_state(float(init_cash), int(grid_ms[0]) if n else 0)
    (eq, cash, gross, net, s_eq, units, t_bar, t_sym, t_qty, t_px, t_fee, counts, flow, a_fee, a_slip, u,
     ev_bar, ev_code, ev_state) = simulate(
        open_, close, w, grid_ms, share, float(init_cash), float(fee), float(slippage), float(min_notional),
        float(drift_band) if rebalance == "drift" else np.nan, np.nan if turnover_cap is None else float(turnover_cap),
        risk.params(), state,
    )  # fmt: skip
    equity = pl.DataFrame({"ts": grid, "equity": eq, "cash": cash, "gross_exposure": gross, "net_exposure": net})
    trades = pl.DataFrame({
        "ts": grid.gather(t_bar) if len(t_bar) else grid.head(0), "symbol": pl.Series(symbols, dtype=pl.Utf8).gather(t_sym),
        "qty": t_qty, "price": t_px, "fee": t_fee,
    }).with_columns(notional=(pl.col("qty").abs() * pl.col("price")))  # fmt: skip
    positions = pl.DataFrame({"symbol": symbols, "units": units})
    last = _last_close(close)
    trading = flow + u * np.where(np.isnan(last), 0.0, last)[None, :]
    attribution = pl.DataFrame({
        "strategy": np.repeat(strategies, m), "symbol": symbols * len(strategies), "trading_pnl": trading.ravel(),
        "fees": a_fee.ravel(), "slippage": a_slip.ravel(), "net_pnl": (trading - a_fee - a_slip).ravel(),
    }, schema=ATTRIBUTION_SCHEMA)  # fmt: skip
    events = pl.DataFrame({
        "ts": grid.gather(ev_bar) if len(ev_bar) else grid.head(0), "state": [STATE_NAMES[s] for s in ev_state],
        "rule": [EVENT_RULES[c] for c in ev_code], "reason": [event_reason(c, risk) for c in ev_code],
    }, schema=RISK_EVENT_SCHEMA)  # fmt: skip
    strategy_equity = pl.DataFrame({"ts": grid, **{s: s_eq[:, k] for k, s in enumerate(strategies)}})
    metrics = _metrics(eq, gross, net, trades, init_cash, _periods(grid, timeframe), float(a_slip.sum()))
    metrics.update({k: int(v) for k, v in zip(COUNTERS, counts)})
    metrics["n_risk_events"] = events.height
    settings = {"name": name, "fee": fee, "slippage": slippage, "init_cash": init_cash, "min_notional": min_notional,
                "timeframe": timeframe, "strategies": strategies, "shares": dict(zip(strategies, share.tolist())),
                "rebalance": rebalance, "drift_band": drift_band if rebalance == "drift" else None,
                "turnover_cap": turnover_cap, "risk": dataclasses.asdict(risk)}  # fmt: skip
    prices = pl.DataFrame({"ts": grid, **{s: close[:, j] for j, s in enumerate(symbols)}})
    return PortfolioResult(float(eq[-1]) if len(eq) else float(init_cash), equity, positions, trades, metrics, settings,
                           attribution=attribution, prices=prices, risk_events=events, strategy_equity=strategy_equity)


def _last_close(close: np.ndarray) -> np.ndarray:
    """Each market's last known close (NaN if it never had one)."""
    last = np.full(close.shape[1], np.nan)
    for j in range(close.shape[1]):
        seen = np.flatnonzero(~np.isnan(close[:, j]))
        if len(seen):
            last[j] = close[seen[-1], j]
    return last



def _periods(ts: pl.Series, timeframe: str | None) -> float:
    """Candles per year (:func:`quantdag.timeframes.candles_per_year`)."""
    return candles_per_year(ts, timeframe)


#: trade-level metrics of a single backtest that mean nothing for fills of a rebalanced book
_ROUND_TRIP_ONLY = ("n_closed_trades", "n_open_trades", "win_rate", "profit_factor", "expectancy", "avg_trade_duration_bars",
                    "avg_trade_duration_days", "max_consecutive_wins", "max_consecutive_losses", "n_rejected",
                    "rejected_size_zero", "rejected_no_cash", "rejected_volume_cap", "n_capped_fills")  # fmt: skip


def _metrics(eq: np.ndarray, gross: np.ndarray, net: np.ndarray, trades: pl.DataFrame, init_cash: float, p: float,
             slippage_paid: float) -> dict[str, Any]:  # fmt: skip
    """The single backtest's metrics (:func:`quantdag.backtest.metrics.compute_metrics`: the same
    formulas), ``n_trades`` counting fills, plus the average gross and net exposure (of equity)."""
    if not len(eq):
        return {"final_equity": init_cash, "total_return": 0.0, "n_trades": 0}
    empty = np.zeros(0)
    out = compute_metrics(
        equity=eq, position=gross, init_cash=init_cash, periods_per_year=p, bar_ms=MS_PER_YEAR / p if p else math.nan,
        trade_pnl=empty, trade_bars=empty, trade_open=np.zeros(0, dtype=bool), fees_paid=float(trades["fee"].sum()),
        slippage_paid=slippage_paid, traded_value=float(trades["notional"].sum()),
    )  # fmt: skip
    out = {k: v for k, v in out.items() if k not in _ROUND_TRIP_ONLY}
    out["n_trades"] = trades.height
    with np.errstate(divide="ignore", invalid="ignore"):
        out["avg_gross_exposure"] = float(np.mean(gross / eq))
        out["avg_net_exposure"] = float(np.mean(net / eq))
    return out
"""``allocate``: walk-forward target weights for :func:`quantdag.portfolio.run_portfolio`.

Why: a portfolio needs weights decided from the past only. How: closes are pivoted onto the union
time grid of all symbols and turned into simple returns (``r[t] = close[t] / close[t-1] - 1``, NaN
when either close is missing). At each rebalance candle ``t`` a method is fitted on the trailing
``lookback`` returns ending at ``t`` (fewer while ``min_history <= t < lookback``), so a weight
stamped ``t`` uses closes up to ``t`` only; ``run_portfolio`` fills it at ``t + 1``'s open.

Missing data: a symbol with any missing return in the window (a gap, a late listing, no candle at
``t``) is left out of that fit and gets weight 0; so is, except under ``equal_weight``, a symbol
whose price did not move in the window (zero volatility: no inverse, and the optimisers fail on
it). Its row is written only if it has a candle at ``t`` (``run_portfolio`` rejects weights at a
time with no candle), so a symbol without a candle at ``t`` keeps whatever position it had until a
rebalance where it trades. If no symbol is usable, every row of that rebalance is 0 (all cash).

``equal_weight``, ``inverse_vol`` and ``vol_target`` are vectorised numpy; the optimisers are
skfolio estimators, imported lazily (importing skfolio takes seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, DataError
from quantdag.timeframes import candles_per_year, periods_per_year

log = logging.getLogger(__name__)

FAST_METHODS = ("equal_weight", "inverse_vol", "vol_target")
OPTIMISERS = ("erc", "hrp", "min_cvar", "max_sharpe")
METHODS = FAST_METHODS + OPTIMISERS
CALENDAR = {"daily": "1d", "weekly": "1w", "monthly": "1mo"}  # polars truncation: weeks start on Monday (ISO)
_CHUNK = 1 << 22  # max floats in one batch of stacked windows (~32 MB)


def allocate(
    candles: pl.DataFrame,
    method: str = "equal_weight",
    *,
    lookback: int = 90,
    every: int | str = 24,
    min_history: int | None = None,
    vol_target: float = 0.2,
    max_leverage: float = 1.0,
    cvar_beta: float = 0.95,
    turnover_penalty: float = 0.001,
    timeframe: str | None = None,
) -> pl.DataFrame:
    """Walk-forward target weights ``(ts, symbol, weight)`` of ``candles`` (long: ts, symbol, close, ...).

    ``every`` is a number of candles or ``"daily"``/``"weekly"``/``"monthly"`` (the last candle of
    each UTC calendar period). ``vol_target`` (annualised, with ``timeframe`` or the median candle
    spacing) and ``max_leverage`` apply to the ``vol_target`` method; ``cvar_beta`` to ``min_cvar``;
    ``turnover_penalty`` (skfolio ``transaction_costs``, in per-candle return units) to ``max_sharpe``.

    Raises
    ------
    ConfigurationError
        An unknown method or ``every``, or an out-of-range parameter.
    DataError
        Missing columns, duplicate (ts, symbol), non-datetime ts, or a null/non-positive close.
    """
    min_history = lookback if min_history is None else min_history
    _check_args(method, lookback, every, min_history, vol_target, max_leverage, cvar_beta, turnover_penalty, timeframe)
    _check_frame(candles)
    ts_dtype = candles.schema["ts"]
    empty = pl.DataFrame(schema={"ts": ts_dtype, "symbol": pl.Utf8, "weight": pl.Float64})
    if candles.height == 0:
        return empty
    symbols = sorted(candles["symbol"].unique().to_list())
    grid = candles.select("ts").unique().sort("ts")["ts"]
    wide = grid.to_frame().join(candles.pivot(on="symbol", index="ts", values="close"), on="ts", how="left")
    close = np.column_stack([wide[s].cast(pl.Float64).to_numpy() for s in symbols]) if symbols else np.empty((0, 0))
    rets = np.full_like(close, np.nan)
    rets[1:] = close[1:] / close[:-1] - 1.0
    idx = _rebalance_index(grid, every, min_history)
    if idx.size == 0:
        return empty
    if method in FAST_METHODS:
        ppy = _periods_per_year(grid, timeframe) if method == "vol_target" else 1.0
        w = _fast(rets, idx, lookback, method, vol_target, max_leverage, ppy)
    else:
        w = _optimise(rets, idx, lookback, method, cvar_beta, turnover_penalty)
    has_candle = np.isfinite(close[idx])
    rows, cols = np.nonzero(has_candle)
    return pl.DataFrame({
        "ts": grid.gather(idx[rows]),
        "symbol": pl.Series([symbols[j] for j in cols], dtype=pl.Utf8),
        "weight": pl.Series(w[rows, cols], dtype=pl.Float64),
    }).sort("ts", "symbol")  # fmt: skip


def _check_args(method: str, lookback: int, every: int | str, min_history: int, vol_target: float,
                max_leverage: float, cvar_beta: float, turnover_penalty: float, timeframe: str | None) -> None:  # fmt: skip
    def is_int(x: object) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    if method not in METHODS:
        raise ConfigurationError(f"unknown allocation method {method!r}; expected one of {METHODS}")
    if not is_int(lookback) or lookback < 2:
        raise ConfigurationError(f"lookback must be an int >= 2, got {lookback!r}")
    if not is_int(min_history) or min_history < 2:
        raise ConfigurationError(f"min_history must be an int >= 2, got {min_history!r}")
    if isinstance(every, str):
        if every not in CALENDAR:
            raise ConfigurationError(f"unknown every {every!r}; expected an int >= 1 or one of {tuple(CALENDAR)}")
    elif not is_int(every) or every < 1:
        raise ConfigurationError(f"every must be an int >= 1 or one of {tuple(CALENDAR)}, got {every!r}")
    for name, value, ok in (("vol_target", vol_target, lambda v: v > 0), ("max_leverage", max_leverage, lambda v: v > 0),
                            ("cvar_beta", cvar_beta, lambda v: 0 < v < 1),
                            ("turnover_penalty", turnover_penalty, lambda v: v >= 0)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or not ok(value):
            raise ConfigurationError(f"{name} out of range: {value!r}")
    if timeframe is not None:
        periods_per_year(timeframe)  # raises ConfigurationError naming it


def _check_frame(candles: pl.DataFrame) -> None:
    missing = [c for c in ("ts", "symbol", "close") if c not in candles.columns]
    if missing:
        raise DataError(f"candles: missing column(s) {missing}")
    if not isinstance(candles.schema["ts"], pl.Datetime):
        raise DataError(f"candles: ts must be a Datetime, got {candles.schema['ts']}")
    dup = candles.group_by("ts", "symbol").len().filter(pl.col("len") > 1)
    if dup.height:
        raise DataError(f"candles: {dup.height} duplicate (ts, symbol) rows, first {dup.row(0)[:2]}")
    close = candles["close"].cast(pl.Float64)
    bad = candles.filter(close.is_null() | ~close.is_finite() | (close <= 0))
    if bad.height:
        raise DataError(f"candles: {bad.height} null, non-finite or non-positive close(s), first {bad.row(0, named=True)}")


def _rebalance_index(grid: pl.Series, every: int | str, min_history: int) -> np.ndarray:
    """Grid positions to rebalance at; position ``t`` has ``t`` returns behind it."""
    n = grid.len()
    if isinstance(every, str):
        utc = grid.dt.replace_time_zone("UTC") if grid.dtype.time_zone is None else grid.dt.convert_time_zone("UTC")
        period = utc.dt.truncate(CALENDAR[every]).to_numpy()
        last = np.append(period[1:] != period[:-1], True) if n else np.zeros(0, dtype=bool)
        idx = np.flatnonzero(last)
        return idx[idx >= min_history]
    return np.arange(min_history, n, every, dtype=np.int64)


def _periods_per_year(grid: pl.Series, timeframe: str | None) -> float:
    ppy = candles_per_year(grid, timeframe)
    if not ppy == ppy or ppy <= 0:  # NaN: no spacing to measure
        raise DataError("candles: cannot infer the candle spacing to annualise volatility; pass timeframe")
    return ppy


def _windows(rets: np.ndarray, idx: np.ndarray, lookback: int) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Batches of stacked trailing windows (k, lookback, n) with rows before the first return set
    to NaN, and per window the symbols usable in the fit (no missing return in their window)."""
    n_sym = rets.shape[1]
    padded = np.vstack([np.full((lookback, n_sym), np.nan), rets])  # grid position t -> padded row t + lookback
    view = np.lib.stride_tricks.sliding_window_view(padded, lookback, axis=0)  # (rows, n, lookback)
    step = max(1, _CHUNK // max(1, lookback * n_sym))
    for a in range(0, idx.size, step):
        t = idx[a:a + step]
        win = view[t + 1].transpose(0, 2, 1)  # window ending at padded row t + lookback
        pre = np.maximum(0, lookback - t)  # rows before grid position 1 (no return there)
        missing = np.isnan(win).sum(axis=1) - pre[:, None]
        yield slice(a, a + t.size), win, missing == 0


def _fast(rets: np.ndarray, idx: np.ndarray, lookback: int, method: str, vol_target: float, max_leverage: float,
          ppy: float) -> np.ndarray:  # fmt: skip
    """equal_weight, inverse_vol and vol_target for all rebalances, vectorised over windows."""
    out = np.zeros((idx.size, rets.shape[1]))
    for sl, win, ok in _windows(rets, idx, lookback):
        if method == "equal_weight":
            w = ok / np.maximum(ok.sum(axis=1, keepdims=True), 1)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                vol = np.nanstd(win, axis=1, ddof=1)
                inv = np.where(ok & (vol > 0), 1.0 / vol, 0.0)
                total = inv.sum(axis=1, keepdims=True)
                w = np.where(total > 0, inv / np.where(total > 0, total, 1.0), 0.0)
            if method == "vol_target":
                port = np.einsum("kln,kn->kl", np.nan_to_num(win), w)
                port[np.isnan(win).all(axis=2)] = np.nan  # rows before the first return
                with np.errstate(invalid="ignore", divide="ignore"):
                    pvol = np.nanstd(port, axis=1, ddof=1) * np.sqrt(ppy)
                scale = np.where(pvol > 0, vol_target / np.where(pvol > 0, pvol, 1.0), 0.0)
                scale = np.minimum(scale, max_leverage)  # inverse-vol weights sum to 1: gross = scale
                w = w * scale[:, None]
        out[sl] = w
    return out


def _optimise(rets: np.ndarray, idx: np.ndarray, lookback: int, method: str, cvar_beta: float,
              turnover_penalty: float) -> np.ndarray:  # fmt: skip
    """One skfolio fit per rebalance; a failed fit keeps the previous weights (equal weight at first)."""
    from skfolio import RiskMeasure
    from skfolio.exceptions import SkfolioError
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk, ObjectiveFunction, RiskBudgeting

    out = np.zeros((idx.size, rets.shape[1]))
    prev: np.ndarray | None = None
    failed = 0
    for k, t in enumerate(idx):
        win = rets[max(1, t - lookback + 1):t + 1]
        ok = ~np.isnan(win).any(axis=0) & (np.ptp(win, axis=0) > 0)  # flat prices break the optimisers: left out
        x = win[:, ok]
        w = np.zeros(rets.shape[1])
        if x.shape[1] == 1:
            w[ok] = 1.0
        elif x.shape[1] > 1:
            pw = None if prev is None else prev[ok]
            if method == "erc":
                est = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE)
            elif method == "hrp":
                est = HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE)
            elif method == "min_cvar":
                est = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK, risk_measure=RiskMeasure.CVAR,
                               cvar_beta=cvar_beta)  # fmt: skip
            else:
                est = MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO, risk_measure=RiskMeasure.VARIANCE,
                               transaction_costs=turnover_penalty, previous_weights=pw)  # fmt: skip
            try:
                if method == "max_sharpe" and not (x.mean(axis=0) > 0).any():
                    raise _Undefined  # no asset beats the zero risk-free rate: the max Sharpe ratio is undefined
                fitted = np.clip(np.asarray(est.fit(x).weights_, dtype=float), 0.0, None)
                if not np.isfinite(fitted).all() or fitted.sum() <= 0:
                    raise _Undefined
                w[ok] = fitted / fitted.sum()
            except (SkfolioError, _Undefined):
                failed += 1
                w[ok] = pw if pw is not None and pw.sum() > 0 else 1.0
                w[ok] /= w[ok].sum()
        out[k] = w
        prev = w
    if failed:
        log.warning("allocate(%s): %d of %d rebalance fit(s) failed; kept the previous weights (equal weight at the "
                    "first)", method, failed, idx.size)  # fmt: skip
    return out


class _Undefined(Exception):
    """A window where the optimiser's answer is undefined (counted with the solver failures)."""

"""Public entry points: validate candles, signals and settings, run the kernel, wrap the result.

:func:`run` takes boolean entry/exit signals (or a ``target`` series), :func:`run_targets` a
target-position series. Both build a :class:`~quantdag.backtest.settings.BacktestSettings` from
their keyword arguments, turn everything into plain float64/bool arrays, call
:func:`quantdag.backtest.nb.simulate_nb` once and return a
:class:`~quantdag.backtest.result.BacktestResult`, which builds its frames and metrics lazily so
a run costs little more than the kernel.

The steps that turn candles and settings into the kernel's inputs are public so a caller that
drives a kernel itself (the parameter sweep) builds exactly the inputs :func:`run` would:
:func:`load_market` (validated :class:`~quantdag.backtest.result.CandleArrays`),
:func:`candle_ms` (the candle length behind ``periods_per_year``) and :func:`entry_sizes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest import enums
from quantdag.backtest.nb import candles_ok_nb, median_step_nb, simulate_nb
from quantdag.backtest.result import BacktestResult, CandleArrays
from quantdag.backtest.settings import BacktestSettings
from quantdag.errors import ConfigurationError, DataError
from quantdag.timeframes import MS_PER_YEAR, timeframe_ms

PRICE_COLUMNS = ("open", "high", "low", "close")
SignalLike = np.ndarray | pl.Series | list[bool] | None


def _first_ts(ts: pl.Series, mask: np.ndarray) -> Any:
    return ts[int(np.flatnonzero(mask)[0])]


def load_market(candles: pl.DataFrame) -> CandleArrays:
    """Check a candle frame and return its columns as contiguous float64/int64 arrays.

    Raises
    ------
    DataError
        Naming the column and the first offending timestamp: not a polars frame, missing
        column, fewer than 2 candles, null/NaN/infinite value, non-positive price, negative
        volume, high/low not bracketing open/close, or ``ts`` not strictly increasing.
    """
    if not isinstance(candles, pl.DataFrame):
        raise DataError(f"candles must be a polars DataFrame, got {type(candles).__name__}")
    names = candles.columns
    missing = [c for c in ("ts", *PRICE_COLUMNS, "volume") if c not in names]
    if missing:
        raise DataError(f"candles lack column(s) {missing}; got {names}")
    if candles.height < 2:
        raise DataError(f"candles must have at least 2 rows, got {candles.height}")
    ts = candles.get_column("ts")
    ts_type = ts.dtype
    is_datetime = isinstance(ts_type, pl.Datetime)
    if not (is_datetime or ts_type.is_integer()):
        raise DataError(f"column 'ts' must be a datetime or integer epoch (ms), got {ts_type}")
    if ts.null_count():
        raise DataError(f"column 'ts' has {ts.null_count()} null value(s)")
    if is_datetime:  # epoch ms: a datetime64[ms] view of polars' buffer, no copy and no cast
        ts_ms = (ts if ts_type.time_unit == "ms" else ts.dt.cast_time_unit("ms")).to_numpy().view(np.int64)
    else:
        ts_ms = (ts if isinstance(ts_type, pl.Int64) else ts.cast(pl.Int64)).to_numpy()
    cols: dict[str, np.ndarray] = {"ts": np.ascontiguousarray(ts_ms)}
    for name in (*PRICE_COLUMNS, "volume"):
        col = candles.get_column(name)
        dtype = col.dtype
        if not isinstance(dtype, pl.Float64):  # the usual float64 column goes as it is
            if not dtype.is_numeric():
                raise DataError(f"column {name!r} must be numeric, got {dtype}")
            col = col.cast(pl.Float64)
        if col.null_count():
            raise DataError(f"column {name!r} has null value(s), first at ts={_first_ts(ts, col.is_null().to_numpy())}")
        cols[name] = np.ascontiguousarray(col.to_numpy(), dtype=np.float64)
    if not candles_ok_nb(cols["ts"], cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"]):
        raise DataError(_candle_problem(ts, cols))
    return CandleArrays(
        ts=ts,
        ts_ms=cols["ts"],
        open=cols["open"],
        high=cols["high"],
        low=cols["low"],
        close=cols["close"],
        volume=cols["volume"],
    )


def _candle_problem(ts: pl.Series, cols: dict[str, np.ndarray]) -> str:
    """Name the first breach of the candle contract (only called when there is one)."""
    step_bad = np.diff(cols["ts"]) <= 0
    o, h, lo, c = (cols[n] for n in PRICE_COLUMNS)
    checks: list[tuple[np.ndarray, str]] = [(np.r_[False, step_bad], "ts")]
    for name in (*PRICE_COLUMNS, "volume"):
        arr = cols[name]
        checks.append((~np.isfinite(arr), name))
        checks.append(((arr < 0) if name == "volume" else (arr <= 0), name))
    checks.append((((h < np.maximum(o, c)) | (lo > np.minimum(o, c))), "bracket"))
    first = min((int(np.argmax(mask)), j) for j, (mask, _) in enumerate(checks) if mask.any())
    k, j = first
    what = checks[j][1]
    if what == "ts":
        return f"column 'ts' must be strictly increasing; row {k} (ts={ts[k]}) is not after ts={ts[k - 1]}"
    if what == "bracket":
        return (
            f"candle at ts={ts[k]} has high/low that do not bracket open/close: "
            f"open={float(o[k])!r} high={float(h[k])!r} low={float(lo[k])!r} close={float(c[k])!r}"
        )
    value = float(cols[what][k])
    if not np.isfinite(value):
        return f"column {what!r} has NaN/infinite value {value!r} at ts={ts[k]}"
    kind = "negative volume" if what == "volume" else "non-positive price"
    return f"column {what!r} has {kind} {value!r} at ts={ts[k]}"


def _signal(name: str, values: SignalLike, n: int, off: np.ndarray) -> np.ndarray:
    """``values`` checked and as a contiguous bool array; ``off`` (all False) when not given."""
    if values is None:
        return off
    if isinstance(values, pl.Series):
        if values.dtype != pl.Boolean:
            raise DataError(f"{name} must be boolean, got a {values.dtype} series")
        if values.null_count():
            raise DataError(f"{name} has {values.null_count()} null value(s); fill them (e.g. with False) first")
        arr = values.to_numpy()
    else:
        arr = np.asarray(values)
        if arr.dtype != np.bool_:
            raise DataError(f"{name} must be boolean, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"{name} has shape {arr.shape} but candles have {n} rows")
    return np.ascontiguousarray(arr, dtype=np.bool_)


def _target(values: Any, n: int, s: BacktestSettings) -> np.ndarray:
    if isinstance(values, (list, tuple)):  # None in a list means "unchanged", like a null
        try:
            values = pl.Series("target", values, dtype=pl.Float64)
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise DataError(f"target must hold numbers or None, got {values!r:.80}") from exc
    if isinstance(values, pl.Series):
        if not values.dtype.is_numeric():
            raise DataError(f"target must be numeric, got a {values.dtype} series")
        arr = values.cast(pl.Float64).fill_null(np.nan).to_numpy()
    else:
        arr = np.asarray(values)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"target must be a numeric fraction of equity, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"target has shape {arr.shape} but candles have {n} rows")
    lo = {"long": 0.0, "short": -s.max_leverage, "both": -s.max_leverage}[s.direction]
    hi = {"long": s.max_leverage, "short": 0.0, "both": s.max_leverage}[s.direction]
    bad = np.isinf(arr) | (arr < lo) | (arr > hi)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"target[{k}] = {float(arr[k])!r} is outside [{lo}, {hi}] allowed by direction={s.direction!r} "
            f"and max_leverage={s.max_leverage}"
        )
    return arr


def candle_ms(c: CandleArrays, s: BacktestSettings) -> float:
    """Candle length in milliseconds: the ``timeframe`` setting, else the median spacing of ``ts``.

    The median is taken over at most ~2,000 evenly spread consecutive pairs: as robust to gaps
    as the full median, and cheap on a million candles. ``MS_PER_YEAR / candle_ms(...)`` is the
    ``periods_per_year`` every annualised metric uses.
    """
    if s.timeframe is not None:
        return float(timeframe_ms(s.timeframe))
    return float(median_step_nb(c.ts_ms, 2000))


def entry_sizes(c: CandleArrays, s: BacktestSettings, periods_per_year: float) -> tuple[int, np.ndarray]:
    """What the kernel reads when a signal opens a position under ``s.sizing``: a size code of
    :mod:`quantdag.backtest.enums` (``SIZE_*``) and a float64 size array, one value per candle
    (read on the signal candle), or of length 1 for a size that never changes.

    ``all_in``/``fixed_fraction``: a fraction of equity (length 1); ``fixed_notional``: quote
    currency (length 1); ``atr_risk``: units per unit of equity, ``risk_per_trade / (atr_mult *
    ATR)``; ``target_vol``: ``min(target_vol / realised vol, max_leverage)`` of equity. ATR and
    volatility are NaN in their warm-up (no entry there, counted as ``rejected_size_zero``); a
    zero ATR or volatility gives an infinite size, which the kernel cuts to ``max_leverage``.
    ``periods_per_year`` annualises the realised volatility.
    """
    if s.sizing == "all_in":  # constant sizes go in as length-1 arrays; the kernel broadcasts them
        return enums.SIZE_PERCENT, np.ones(1)
    if s.sizing == "fixed_fraction":
        return enums.SIZE_PERCENT, np.array([float(s.size)])
    if s.sizing == "fixed_notional":
        return enums.SIZE_VALUE, np.array([float(s.size)])
    with np.errstate(divide="ignore"):  # zero ATR/vol -> inf units, cut to max_leverage in the kernel
        if s.sizing == "atr_risk":
            from quantdag.indicators import atr  # TA-Lib is only needed for this sizing

            return enums.SIZE_UNITS_PER_EQUITY, s.risk_per_trade / (
                s.atr_mult * atr(c.high, c.low, c.close, s.atr_period)
            )
        return enums.SIZE_PERCENT, np.minimum(
            s.target_vol / realised_vol(c.close, s.vol_window, periods_per_year), s.max_leverage
        )


def realised_vol(close: np.ndarray, window: int, periods_per_year: float) -> np.ndarray:
    """Annualised sample std of the last ``window`` log returns at each close (NaN in warm-up)."""
    lr = np.diff(np.log(close))
    out = np.full(close.shape[0], np.nan)
    if lr.shape[0] >= window:
        win = np.lib.stride_tricks.sliding_window_view(lr, window)
        out[window:] = win.std(axis=1, ddof=1) * np.sqrt(periods_per_year)
    return out


def _settings(settings: BacktestSettings | None, kwargs: dict[str, Any]) -> BacktestSettings:
    if settings is None:
        try:
            return BacktestSettings(**kwargs)  # validated once
        except TypeError as exc:  # an unknown keyword: let replace() name it
            if "unexpected keyword" not in str(exc):
                raise
        base = BacktestSettings()
    elif isinstance(settings, BacktestSettings):
        base = settings
    else:
        raise ConfigurationError(f"settings must be a BacktestSettings, got {type(settings).__name__}")
    return base.replace(**kwargs) if kwargs else base


def run(
    candles: pl.DataFrame,
    entries: SignalLike = None,
    exits: SignalLike = None,
    *,
    short_entries: SignalLike = None,
    short_exits: SignalLike = None,
    target: Any = None,
    settings: BacktestSettings | None = None,
    **kwargs: Any,
) -> BacktestResult:
    """Backtest boolean signals (or a target series) on one market's candles.

    Parameters
    ----------
    candles
        polars frame with ``ts`` (datetime or epoch ms, strictly increasing) and float
        ``open/high/low/close/volume``.
    entries, exits
        Boolean arrays or series, one per candle, computed on that candle's close. With
        ``direction="short"`` they open and close shorts. ``exits`` may be omitted (stops and
        the end of the data then close trades). An exit and an entry on one candle: the exit wins.
    short_entries, short_exits
        Short signals for ``direction="both"`` (``short_entries`` required there). Long and
        short entries on one candle cancel each other; an entry of the other side reverses.
    target
        Instead of signals: the target position as a fraction of equity; see :func:`run_targets`.
    settings
        A :class:`BacktestSettings`; keyword arguments override its fields (or the defaults).
    **kwargs
        Any :class:`BacktestSettings` field, e.g. ``fill="close"``, ``fee=0.001``.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ConfigurationError
        Unknown or invalid setting, or signals that do not fit the direction.
    DataError
        Bad candles, or signals/targets of the wrong type, length or range.
    """
    s = _settings(settings, kwargs)
    if target is not None:
        if any(x is not None for x in (entries, exits, short_entries, short_exits)):
            raise ConfigurationError("pass either target or entry/exit signals, not both")
        return _simulate(candles, s, target=target)
    if entries is None:
        raise ConfigurationError("run needs entries (or target=...)")
    if s.direction != "both" and (short_entries is not None or short_exits is not None):
        raise ConfigurationError(
            f"short_entries/short_exits need direction='both', got direction={s.direction!r} "
            "(with direction='short', entries/exits open and close the shorts)"
        )
    if s.direction == "both" and short_entries is None:
        raise ConfigurationError("direction='both' needs short_entries")
    return _simulate(candles, s, signals=(entries, exits, short_entries, short_exits))


def run_targets(
    candles: pl.DataFrame, target: Any, *, settings: BacktestSettings | None = None, **kwargs: Any
) -> BacktestResult:
    """Backtest a target-position series: the fraction of equity to hold after each candle.

    ``target[t]`` (float; NaN/null = unchanged) is decided at the close of ``t`` and traded at
    the next fill point (next open by default) with the usual costs, only when it differs from
    the last target acted on -- so a constant 0.5 buys once and lets the weight drift. The units
    aimed at are ``target * equity / (p * (1 + fee))`` with ``p`` the slipped price, so ±1 from
    flat is exactly all-in. A move to 0 or across 0 closes the trade (exit reason ``signal``);
    stops, if set, close it until the target changes again. Targets must lie in
    ``[0, max_leverage]`` for ``direction="long"``, ``[-max_leverage, 0]`` for ``"short"``.

    Raises
    ------
    ConfigurationError
        Invalid setting, or a ``sizing`` other than ``all_in`` (the target is the size).
    DataError
        Bad candles or a target of the wrong type, length or range.
    """
    return _simulate(candles, _settings(settings, kwargs), target=target)


def _simulate(
    candles: pl.DataFrame, s: BacktestSettings, *, signals: tuple | None = None, target: Any = None
) -> BacktestResult:
    m = load_market(candles)
    n = m.close.shape[0]
    bar_ms = candle_ms(m, s)
    ppy = MS_PER_YEAR / bar_ms
    if signals is None:
        if s.sizing != "all_in":
            raise ConfigurationError(f"sizing={s.sizing!r} does not apply to a target run: the target is the size")
        mode, size_type, size = enums.MODE_TARGET, enums.SIZE_PERCENT, np.zeros(0)
        tgt = _target(target, n, s)
        le = lx = se = sx = np.zeros(0, dtype=np.bool_)
    else:
        mode = enums.MODE_SIGNALS
        tgt = np.zeros(0)
        entries, exits, short_entries, short_exits = signals
        off = np.zeros(n, dtype=np.bool_)  # shared by every signal not given (read-only in the kernel)
        a, b = _signal("entries", entries, n, off), _signal("exits", exits, n, off)
        if s.direction == "short":
            le, lx, se, sx = off, off, a, b
        else:
            le, lx = a, b
            se, sx = _signal("short_entries", short_entries, n, off), _signal("short_exits", short_exits, n, off)
        size_type, size = entry_sizes(m, s, ppy)
    slip = np.array([float(s.slippage)])  # the volatility part is added per fill by the kernel
    slip_vol_factor = float(s.slippage_vol_factor) if s.slippage_model == "volatility" else 0.0
    marks = np.empty((n, enums.N_MARK_FIELDS))  # untouched rows cost nothing: pages never faulted in
    trades = np.empty((n, enums.N_TRADE_FIELDS))
    stats = np.zeros(enums.N_STATS)
    simulate_nb(
        m.open, m.high, m.low, m.close, m.volume, le, lx, se, sx, tgt, size, slip,
        mode, enums.FILLS[s.fill], size_type, float(s.init_cash), float(s.fee),
        float(s.stop_loss or 0.0), float(s.take_profit or 0.0), float(s.trailing_stop or 0.0),
        float(s.max_leverage), float(s.max_volume_share) if s.max_volume_share is not None else np.inf,
        slip_vol_factor, marks, trades, stats,
    )  # fmt: skip
    # copies of the rows written, so the big buffers go back to the heap at once: shrinking them
    # in place (realloc) instead let the allocator trim the heap, and the next run page-faulted
    # its buffers in again (~50 faults, slower than the copies)
    n_trades = int(stats[enums.S_N_TRADES])
    return BacktestResult(
        settings=s,
        market=m,
        marks=marks[: int(stats[enums.S_N_MARKS])].copy(),
        trade_records=trades[:n_trades].copy(),
        stats=stats,
        periods_per_year=ppy,
        bar_ms=bar_ms,
        is_target_run=mode == enums.MODE_TARGET,
    )

"""Parameter sweeps: every feasible combination of a grid, one row of engine metrics each.

:func:`sweep` validates everything first (grid, settings, candles, objective names), then runs
either the specialised parallel moving-average-crossover kernel (:mod:`quantdag.optimize.nb`,
for ``sma_cross``/``ema_cross`` without stops or volume cap) or the generic engine in parallel
(:mod:`quantdag.optimize.generic`) for any other strategy or setting. Both give exactly the
columns of :attr:`quantdag.backtest.BacktestResult.metrics`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numba
import numpy as np
import polars as pl

from quantdag.backtest import BacktestSettings, enums
from quantdag.backtest.engine import candle_ms, entry_sizes, load_market
from quantdag.backtest.result import CandleArrays
from quantdag.backtest.metrics import compute_metrics, metrics_from_stats
from quantdag.errors import ConfigurationError, DataError
from quantdag.strategies import get_strategy
from quantdag.strategies.base import Strategy
from quantdag.timeframes import MS_PER_YEAR

#: Strategies the crossover kernel handles (their signals are ``crossed_above/below`` of two MAs).
CROSS_STRATEGIES = ("sma_cross", "ema_cross")


def _metric_names() -> tuple[str, ...]:
    one = np.ones(3)
    z = np.zeros(0)
    return tuple(
        compute_metrics(
            equity=one, position=one, init_cash=1.0, periods_per_year=1.0, bar_ms=1.0, trade_pnl=z, trade_bars=z,
            trade_open=z, fees_paid=0.0, slippage_paid=0.0, traded_value=0.0,
        )
    )


#: Every metric of the backtest engine, in its order (what ``objective=`` may name).
METRICS: tuple[str, ...] = _metric_names()
#: Metrics where smaller is better (an objective on them is minimised).
MINIMISE = frozenset({"max_drawdown", "max_drawdown_duration_bars", "max_drawdown_duration_days", "volatility",
                      "fees_paid", "slippage_paid", "max_consecutive_losses", "turnover", "n_rejected",
                      "rejected_size_zero", "rejected_no_cash", "rejected_volume_cap", "n_capped_fills"})  # fmt: skip


def check_metric(name: Any, what: str = "objective") -> str:
    """``name`` if it is a metric of the engine, else :class:`ConfigurationError` listing them."""
    if not isinstance(name, str) or name not in METRICS:
        raise ConfigurationError(f"unknown {what} metric {name!r}; known metrics: {', '.join(METRICS)}")
    return name


def resolve_strategy(strategy: str | type[Strategy] | Strategy) -> type[Strategy]:
    """The strategy class of a registry name, class or instance."""
    if isinstance(strategy, str):
        return get_strategy(strategy)
    if isinstance(strategy, Strategy):
        return type(strategy)
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy
    raise ConfigurationError(f"strategy must be a registry name or Strategy, got {strategy!r}")


def make_settings(settings: BacktestSettings | None = None, **kwargs: Any) -> BacktestSettings:
    """Validated engine settings (unknown names and bad values raise ConfigurationError)."""
    base = settings if settings is not None else BacktestSettings()
    if not isinstance(base, BacktestSettings):
        raise ConfigurationError(f"settings must be a BacktestSettings, got {type(base).__name__}")
    return base.replace(**kwargs) if kwargs else base


def _values(name: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    out = list(values.tolist() if isinstance(values, np.ndarray) else values)
    if not out:
        raise ConfigurationError(f"grid value list of parameter {name!r} is empty")
    return out


def expand_grid(strategy: str | type[Strategy] | Strategy, grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every complete, valid parameter mapping of ``grid`` (name -> values; a scalar pins one value)
    that satisfies the strategy's constraints, in grid order.

    Raises
    ------
    ConfigurationError
        Empty grid or value list, unknown parameter, invalid value (each named), or no
        combination satisfying the constraints (infeasible space).
    """
    cls = resolve_strategy(strategy)
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigurationError(f"{cls.name}: the grid is empty ({grid!r}); give parameter name -> values")
    defs = cls.param_defs()
    unknown = [k for k in grid if k not in defs]
    if unknown:
        raise ConfigurationError(f"{cls.name}: unknown parameter(s) {unknown} in the grid; known: {', '.join(defs)}")
    axes = {name: [defs[name].validate(v, owner=cls.name) for v in _values(name, vals)] for name, vals in grid.items()}
    base = cls.defaults()
    names = tuple(axes)
    checks = tuple(c.check for c in cls.constraints)
    out = []
    for combo in itertools.product(*axes.values()):
        values = base.copy()
        values.update(zip(names, combo))
        for check in checks:
            if not check(values):
                break
        else:
            out.append(values)
    if not out:
        rules = ", ".join(repr(c.expr) for c in cls.constraints)
        raise ConfigurationError(f"{cls.name}: no combination of the grid {dict(grid)!r} satisfies the constraints {rules}")
    return out


def check_candles(
    candles: pl.DataFrame,
    cls: type[Strategy],
    combos: Sequence[Mapping[str, Any]],
    what: str = "candles",
    *,
    validated: bool = False,
) -> CandleArrays:
    """DataError if the candles are invalid or too short for the slowest combination; else the
    validated arrays (:func:`~quantdag.backtest.engine.load_market`), so the sweep need not load
    and validate them again.

    ``validated=True`` says the combinations come from :func:`expand_grid` or the search space
    (already validated), so they are not validated again.
    """
    market = load_market(candles)
    make = cls.from_valid if validated else (lambda p: cls(**p))
    need, worst = 0, None
    for p in combos:
        k = make(p).startup_candles
        if k > need:
            need, worst = k, p
    if candles.height < need + 2:
        raise DataError(
            f"{what}: {candles.height} rows are too few for {cls.name} {worst}: it needs at least {need + 2} "
            f"(startup {need} + 2)"
        )
    return market


def _kernel_ok(cls: type[Strategy], s: BacktestSettings) -> bool:
    return (
        cls.name in CROSS_STRATEGIES
        and s.direction in ("long", "short")
        and s.stop_loss is None
        and s.take_profit is None
        and s.trailing_stop is None
        and s.max_volume_share is None
    )


def metrics_from_summary(out: np.ndarray, n: int, init_cash: float, ppy: float, bar_ms: float) -> dict[str, np.ndarray]:
    """The engine's metrics from the kernel's summaries, through the engine's own formulas
    (:func:`quantdag.backtest.metrics.metrics_from_stats`)."""
    from quantdag.optimize import nb as onb

    def col(name: str, dtype: type = np.float64) -> np.ndarray:
        return out[:, getattr(onb, "O_" + name)].astype(dtype)

    none = np.zeros(out.shape[0], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        std = np.sqrt(col("SUM_SQ_DEV") / (n - 1)) if n > 1 else np.full(out.shape[0], np.nan)
    return metrics_from_stats(
        n=n, init_cash=init_cash, periods_per_year=ppy, bar_ms=bar_ms, final=col("FINAL_EQUITY"),
        mean_r=col("MEAN_R"), std_r=std, downside=np.sqrt(col("MEAN_DOWN_SQ")), max_dd=col("MAX_DD"),
        dd_bars=col("DD_BARS", np.int64), n_trades=col("N_TRADES", np.int64), n_open=col("N_OPEN", np.int64),
        n_wins=col("N_WINS", np.int64), win_sum=col("WIN_SUM"), loss_sum=col("LOSS_SUM"), pnl_sum=col("PNL_SUM"),
        bars_sum=col("BARS_SUM"), max_wins=col("MAX_CW", np.int64), max_losses=col("MAX_CL", np.int64),
        exposed=col("EXPOSED", np.int64), traded=col("TRADED"), mean_equity=col("MEAN_EQUITY"), fees_paid=col("FEES"),
        slippage_paid=col("SLIP"), rejected_size_zero=col("REJ_SIZE", np.int64),
        rejected_no_cash=col("REJ_CASH", np.int64), rejected_volume_cap=none, capped_fills=none,  # no volume cap here
    )  # fmt: skip


def _cross_sweep(m: CandleArrays, combos: list[dict[str, Any]], s: BacktestSettings) -> dict[str, np.ndarray]:
    from quantdag.optimize import nb as onb
    from quantdag.strategies.ma_cross import moving_average

    n = m.close.shape[0]
    bar_ms = candle_ms(m, s)
    ppy = MS_PER_YEAR / bar_ms
    size_type, size = entry_sizes(m, s, ppy)
    size = np.ascontiguousarray(size, dtype=np.float64)
    fast_keys = [(p["ma_type"], p["fast"]) for p in combos]
    slow_keys = [(p["ma_type"], p["slow"]) for p in combos]
    # each distinct average once: the SMAs first (one parallel pass, bit-identical to TA-Lib's),
    # then any other kind with the strategy's own function
    keys = sorted({*fast_keys, *slow_keys}, key=lambda k: (k[0] != "sma", k))
    row = {key: j for j, key in enumerate(keys)}
    ma = np.empty((len(keys), n))
    n_sma = sum(1 for k in keys if k[0] == "sma")
    onb.sma_rows_nb(m.close, np.array([k[1] for k in keys[:n_sma]], dtype=np.int64), ma[:n_sma])
    for key in keys[n_sma:]:
        ma[row[key]] = moving_average(m.close, key[1], key[0])
    fast_row = np.fromiter(map(row.__getitem__, fast_keys), dtype=np.int64, count=len(combos))
    slow_row = np.fromiter(map(row.__getitem__, slow_keys), dtype=np.int64, count=len(combos))
    out = onb.cross_sweep_nb(
        m.open, m.high, m.low, m.close, ma, fast_row, slow_row, s.direction == "short", enums.FILLS[s.fill],
        size_type, size, float(s.slippage), float(s.slippage_vol_factor) if s.slippage_model == "volatility" else 0.0,
        float(s.init_cash), float(s.fee), float(s.max_leverage), onb.thread_order(len(combos), numba.get_num_threads()),
    )  # fmt: skip
    return metrics_from_summary(out, n, float(s.init_cash), ppy, bar_ms)


def results_frame(cls: type[Strategy], combos: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> pl.DataFrame:
    """Parameter columns, then ``final_equity``, ``n_trades`` and the other metrics."""
    params = {name: [p[name] for p in combos] for name in cls.param_defs()}
    order = ["final_equity", "n_trades", *(k for k in METRICS if k not in ("final_equity", "n_trades"))]
    cols = {**params, **{k: metrics[k] for k in order}}
    return pl.DataFrame(cols, strict=False)


def sweep(
    candles: pl.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    grid: Mapping[str, Any],
    *,
    settings: BacktestSettings | None = None,
    n_jobs: int | None = None,
    engine: str = "auto",
    **kwargs: Any,
) -> pl.DataFrame:
    """Backtest every feasible combination of ``grid``; one row per combination.

    Parameters
    ----------
    candles
        The engine's candle frame (``ts``, ``open/high/low/close/volume``).
    strategy
        Registry name (e.g. ``"sma_cross"``), class or instance.
    grid
        Parameter name -> values (a list, range or array; a scalar pins one value). Parameters
        not in the grid keep their defaults; combinations that break a constraint (``fast < slow``)
        are skipped.
    settings, **kwargs
        Backtest settings, as for :func:`quantdag.backtest.run` (``fill``, ``fee``, ``slippage``,
        ``init_cash``, ...).
    n_jobs
        Worker processes of the generic path (``None``: all cores when it pays off).
    engine
        ``"auto"`` (the crossover kernel when it applies), ``"kernel"`` (require it) or ``"generic"``.

    Returns
    -------
    polars.DataFrame
        Every strategy parameter, ``final_equity``, ``n_trades`` and every other engine metric
        (:data:`METRICS`), in grid order.

    Raises
    ------
    ConfigurationError
        Empty/infeasible grid, unknown parameter or setting, invalid value -- before any work.
    DataError
        Bad candles, or fewer than the slowest combination needs.
    """
    cls = resolve_strategy(strategy)
    s = make_settings(settings, **kwargs)
    combos = expand_grid(cls, grid)
    market = check_candles(candles, cls, combos, validated=True)
    return sweep_combos(candles, cls, combos, s, n_jobs=n_jobs, engine=engine, checked=market)


def sweep_combos(
    candles: pl.DataFrame,
    cls: type[Strategy],
    combos: Sequence[Mapping[str, Any]],
    s: BacktestSettings,
    *,
    n_jobs: int | None = None,
    engine: str = "auto",
    checked: bool | CandleArrays = False,
) -> pl.DataFrame:
    """:func:`sweep` over an explicit list of complete, valid parameter mappings.

    ``checked``: the caller has run :func:`check_candles` on these candles (``True``), or passes
    what it returned (the loaded arrays, which the kernel then uses as they are)."""
    if not combos:
        raise ConfigurationError(f"{cls.name}: no parameter combination to evaluate")
    combos = [dict(p) for p in combos]
    if not checked:
        checked = check_candles(candles, cls, combos)
    if engine not in ("auto", "kernel", "generic"):
        raise ConfigurationError(f"engine must be 'auto', 'kernel' or 'generic', got {engine!r}")
    use_kernel = _kernel_ok(cls, s) and engine != "generic"
    if engine == "kernel" and not use_kernel:
        raise ConfigurationError(
            f"the crossover kernel handles {CROSS_STRATEGIES} without stops or volume cap; got {cls.name!r} "
            f"with direction={s.direction!r}, stops/volume cap set={s.stop_loss, s.take_profit, s.trailing_stop, s.max_volume_share}"
        )
    if use_kernel:
        metrics = _cross_sweep(checked if isinstance(checked, CandleArrays) else load_market(candles), combos, s)
    else:
        from quantdag.optimize.generic import generic_metrics

        metrics = generic_metrics(candles, cls.name, combos, s, n_jobs=n_jobs)
    return results_frame(cls, combos, metrics)

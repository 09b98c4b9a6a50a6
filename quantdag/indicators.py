"""Technical indicators over float arrays, through TA-Lib, with warm-up values as nulls.

TA-Lib marks its warm-up with NaN; SQL's ``IS NOT NULL`` would let those through, so every
function here returns a float64 numpy array where NaN means "not yet defined", and
:func:`to_series` turns that into a polars Series with nulls. Strategies and the pipeline both
call these functions, so an indicator is computed one way everywhere.

The pipeline's table ``features.indicators`` is configured in ``quantdag.yaml`` as a list of
entries, each naming a TA-Lib function (upper case, validated against ``talib.abstract``) or a
user indicator registered with :func:`register_indicator` (lower case);
:func:`indicator_spec` checks one entry and :class:`IndicatorSpec` computes it.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import talib
import talib.abstract

from quantdag.errors import ConfigurationError, QuantdagError, StrategyError

ArrayLike = np.ndarray | pl.Series


def _arr(x: ArrayLike) -> np.ndarray:
    if isinstance(x, pl.Series):
        x = x.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return np.ascontiguousarray(x, dtype=np.float64)


def _period(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def sma(close: ArrayLike, period: int) -> np.ndarray:
    """Simple moving average; undefined for the first ``period - 1`` values."""
    return talib.SMA(_arr(close), timeperiod=_period("period", period))


def ema(close: ArrayLike, period: int) -> np.ndarray:
    """Exponential moving average seeded with the SMA (TA-Lib's convention)."""
    return talib.EMA(_arr(close), timeperiod=_period("period", period))


def rsi(close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder's relative strength index in [0, 100]."""
    return talib.RSI(_arr(close), timeperiod=_period("period", period, 2))


def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram.

    Raises
    ------
    ConfigurationError
        If ``fast >= slow``.
    """
    fast, slow, signal = _period("fast", fast, 2), _period("slow", slow, 2), _period("signal", signal)
    if fast >= slow:
        raise ConfigurationError(f"macd fast ({fast}) must be < slow ({slow})")
    return talib.MACD(_arr(close), fastperiod=fast, slowperiod=slow, signalperiod=signal)


def bbands(
    close: ArrayLike, period: int = 20, nbdev: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands: upper, middle (SMA) and lower, ``nbdev`` population std devs apart."""
    if not np.isfinite(nbdev) or nbdev <= 0:
        raise ConfigurationError(f"bbands nbdev must be > 0, got {nbdev!r}")
    return talib.BBANDS(_arr(close), timeperiod=_period("period", period, 2), nbdevup=nbdev, nbdevdn=nbdev)


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder's average true range, in price units."""
    return talib.ATR(_arr(high), _arr(low), _arr(close), timeperiod=_period("period", period))


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Wilder's average directional index in [0, 100]: trend strength, not direction."""
    return talib.ADX(_arr(high), _arr(low), _arr(close), timeperiod=_period("period", period, 2))


# ---- convergence of recursive indicators: how much history makes a value start-independent ----
#: Relative tolerance within which a recursive indicator counts as converged: its value no longer
#: depends on where the history starts by more than this (relative to the indicator's scale). The
#: pipeline's stored indicators use the same tolerance (:mod:`quantdag.features`).
SETTLE_RTOL = 1e-6
#: Largest start-up error assumed, relative to the indicator's scale: a seed (an SMA of the first
#: candles, Wilder's first average gain) can be off by more than the value itself when the
#: history starts in a calm stretch before a volatile one, so the decay must reach rtol / 10.
START_ERROR = 10.0


def settle_candles(alpha: float, first: int, *, stages: int = 1, rtol: float = SETTLE_RTOL) -> int:
    """Index from which a recursive average with smoothing ``alpha`` is within ``rtol`` of its value
    on any longer history (TA-Lib's "unstable period", counted from the first candle).

    A start-up error decays as ``(1 - alpha)^n``; ``stages`` smoothings in cascade (ADX smooths
    Wilder-smoothed DM/TR again) multiply it by about ``(n * alpha)^(stages - 1)``. ``first`` is
    the index of the indicator's first value (where the seed is taken). freqtrade's rule of
    thumb (``startup_candle_count`` of 400 for an EMA-100) leaves a 0.3% error; this solves for
    ``rtol`` with :data:`START_ERROR` of margin instead.
    """
    if not 0.0 < alpha < 1.0 or first < 0 or stages < 1 or not 0.0 < rtol < 1.0:
        raise ConfigurationError(f"settle_candles: need 0 < alpha < 1, first >= 0, stages >= 1, 0 < rtol < 1; "
                                 f"got alpha={alpha}, first={first}, stages={stages}, rtol={rtol}")  # fmt: skip
    target, decay = rtol / START_ERROR, math.log1p(-alpha)
    n = math.ceil(math.log(target) / decay)
    while stages > 1 and (stages - 1) * math.log(max(n * alpha, 1.0)) + n * decay > math.log(target):
        n += 1
    return first + n


def ema_settle(period: int) -> int:
    """Candles until :func:`ema` (alpha = 2 / (period + 1), SMA seed at ``period - 1``) is start-independent."""
    period = _period("period", period)
    return period - 1 if period == 1 else settle_candles(2.0 / (period + 1), period - 1)


def wilder_settle(period: int, *, first: int | None = None, stages: int = 1) -> int:
    """Candles until a Wilder average (alpha = 1 / period: RSI, ATR; ``stages=2``, ``first=2p-1``: ADX)
    is start-independent."""
    period = _period("period", period, 2)
    return settle_candles(1.0 / period, period if first is None else first, stages=stages)


def macd_settle(slow: int, signal: int) -> int:
    """Candles until all three :func:`macd` outputs are start-independent: the slow EMA's settling,
    then the signal EMA's over the settled line (the faster EMA settles sooner)."""
    return ema_settle(slow) + ema_settle(signal)


def to_series(name: str, values: np.ndarray) -> pl.Series:
    """A polars Float64 Series with TA-Lib's NaN warm-up turned into nulls."""
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None)


# ---- configurable indicators: TA-Lib functions by name and registered user functions ---------

#: Candle columns an indicator may read (TA-Lib inputs, or what a user indicator is given).
CANDLE_INPUTS = ("open", "high", "low", "close", "volume")
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_USER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
Key = tuple[str | int, ...]


class IndicatorConfigError(ConfigurationError):
    """A bad indicator entry; ``key`` is the offending key inside the entry (e.g. ``("params", "timeperod")``).

    Kept apart from the message so the configuration file can report the full path to the value.
    """

    def __init__(self, key: Key, message: str) -> None:
        self.key, self.message = tuple(key), message
        super().__init__(f"{key_path(self.key)}: {message}" if self.key else message)


def key_path(key: Key, prefix: str = "") -> str:
    """``("params", "x")`` -> ``params.x``; ``(3, "column")`` with prefix ``indicators`` -> ``indicators[3].column``."""
    out = prefix
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class UserIndicator:
    """A registered indicator function ``f(candles, **params)`` (see :func:`register_indicator`)."""

    name: str
    func: Callable[..., Any]
    outputs: tuple[str, ...] | None  # declared output names when it returns a mapping
    params: tuple[str, ...] | None  # keyword parameters it accepts; None: any (**kwargs)
    required: tuple[str, ...]  # parameters without a default


_USER_INDICATORS: dict[str, UserIndicator] = {}


def register_indicator(
    func: Callable[..., Any] | None = None, *, name: str | None = None, outputs: Sequence[str] | None = None
) -> Any:
    """Decorator: make ``f(candles: pl.DataFrame, **params)`` usable as ``function`` in ``quantdag.yaml``.

    ``candles`` is one market's candles sorted by ts; ``f`` returns one value per candle (a polars
    Series or numpy array; NaN/null while undefined) or, for several columns, a mapping of output
    name to such arrays (declare their names with ``outputs`` so the file is checked when it
    loads). The value at row t may use rows <= t only: the pipeline checks this by recomputation.
    Names are lower case, so they never shadow a TA-Lib function. Usage::

        @register_indicator
        def range_pct(candles, window: int = 10): ...

        @register_indicator(name="bands", outputs=("upper", "lower"))
        def my_bands(candles, window: int = 20): ...

    Raises
    ------
    ConfigurationError
        If the name is not a lower-case identifier, belongs to another function, or ``f`` takes
        no candles argument.
    """

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        _add_indicator(f, name or getattr(f, "__name__", ""), outputs)
        return f

    return wrap(func) if func is not None else wrap


def _add_indicator(f: Callable[..., Any], name: str, outputs: Sequence[str] | None) -> None:
    if not callable(f):
        raise ConfigurationError(f"register_indicator expects a function, got {f!r}")
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise ConfigurationError(f"indicator name must be a lower-case identifier, got {name!r}")
    if name.upper() in talib_functions():
        raise ConfigurationError(f"indicator name {name!r} is TA-Lib's {name.upper()} in lower case; choose another")
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        raise ConfigurationError(f"indicator {name!r}: cannot read the signature of {f!r}") from None
    ps = list(sig.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not ps or ps[0].kind not in positional:
        raise ConfigurationError(f"indicator {name!r}: its first argument must be the candles frame")
    rest = ps[1:]
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest)
    named = [p for p in rest if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if outputs is not None:
        outputs = tuple(outputs)
        if not outputs or not all(isinstance(o, str) and o for o in outputs) or len(set(outputs)) != len(outputs):
            raise ConfigurationError(f"indicator {name!r}: outputs must be distinct non-empty names, got {outputs!r}")
    ind = UserIndicator(
        name=name,
        func=f,
        outputs=outputs,
        params=None if any_kw else tuple(p.name for p in named),
        required=tuple(p.name for p in named if p.default is inspect.Parameter.empty),
    )
    known = _USER_INDICATORS.get(name)
    same = known is not None and (known.func.__module__, known.func.__qualname__) == (f.__module__, f.__qualname__)
    if known is not None and not same:
        raise ConfigurationError(
            f"indicator name {name!r} is already registered by {known.func.__module__}.{known.func.__qualname__}"
        )
    _USER_INDICATORS[name] = ind


def unregister_indicator(name: str) -> None:
    """Remove a registered indicator (tests and notebooks that register temporary ones)."""
    _USER_INDICATORS.pop(name, None)


def list_indicators() -> list[str]:
    """Names of the registered user indicators, sorted."""
    return sorted(_USER_INDICATORS)


def get_indicator(name: str) -> UserIndicator:
    """The registered user indicator ``name``.

    Raises
    ------
    ConfigurationError
        If none is registered under that name (the registered ones listed).
    """
    try:
        return _USER_INDICATORS[name]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown indicator {name!r}; registered: {list_indicators()}") from None


@functools.cache
def talib_functions() -> frozenset[str]:
    """Every TA-Lib function name (upper case, e.g. ``RSI``, ``CDL2CROWS``)."""
    return frozenset(talib.get_functions())


@functools.cache
def _reserved_words() -> frozenset[str]:
    import duckdb  # only to ask DuckDB which words cannot be a bare column name

    with duckdb.connect() as con:
        rows = con.execute("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'").fetchall()
    return frozenset(r[0].lower() for r in rows)


def check_column_name(name: Any, key: Key) -> str:
    """``name`` if it is a safe SQL column name: lower-case identifier, at most 63 characters, not a reserved word.

    Raises
    ------
    IndicatorConfigError
        Naming ``key`` and the value.
    """
    if not isinstance(name, str) or not _COLUMN.match(name):
        raise IndicatorConfigError(
            key, f"{name!r} is not a column name (lower-case letters, digits and _, not starting with a digit, <= 63)"
        )
    if name in _reserved_words():
        raise IndicatorConfigError(key, f"{name!r} is an SQL reserved word")
    return name


@dataclass(frozen=True)
class IndicatorSpec:
    """One configured indicator: what to call, with what, and which column each output fills.

    ``outputs`` pairs an output name with its column (``""``: a user indicator's single result);
    ``inputs`` are the candle columns passed to a TA-Lib function, in its argument order;
    ``lookback_bars`` is how many earlier candles its first value needs (0: nothing special).
    """

    function: str
    outputs: tuple[tuple[str, str], ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    lookback_bars: int = 0
    user: UserIndicator | None = field(default=None, compare=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for _, c in self.outputs)

    def compute(self, arrays: Mapping[str, np.ndarray], candles: pl.DataFrame | None = None) -> dict[str, np.ndarray]:
        """Column -> float64 values (NaN while undefined) of one market.

        ``arrays`` holds the TA-Lib inputs as contiguous float64; a user indicator gets ``candles``
        (one market, sorted by ts).

        Raises
        ------
        StrategyError
            If a user indicator fails or returns something that is not one value per candle.
        """
        if self.user is None:
            result = getattr(talib, self.function)(*(arrays[c] for c in self.inputs), **self.params)
            names = _talib_info(self.function)["output_names"]
            by_name = dict(zip(names, result, strict=True)) if isinstance(result, tuple) else {names[0]: result}
            return {col: np.asarray(by_name[out], dtype=np.float64) for out, col in self.outputs}
        assert candles is not None
        return self._user_values(candles)

    def _user_values(self, candles: pl.DataFrame) -> dict[str, np.ndarray]:
        name = self.function
        try:
            result = self.user.func(candles, **self.params)  # type: ignore[union-attr]
        except QuantdagError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code: blame the indicator, keep the cause
            raise StrategyError(f"indicator {name!r} failed on {candles.height} candles: {type(exc).__name__}: {exc}") from exc
        single = self.outputs[0][0] == ""
        if single == isinstance(result, Mapping):
            want = "one array (configure `columns` for a mapping)" if single else "a mapping of output name -> array"
            raise StrategyError(f"indicator {name!r} returned {type(result).__name__}; expected {want}")
        by_name = {"": result} if single else result
        out = {}
        for o, col in self.outputs:
            if o not in by_name:
                raise StrategyError(f"indicator {name!r} returned no output {o!r} (column {col!r}); got {sorted(by_name)}")
            out[col] = _user_array(name, col, by_name[o], candles.height)
        return out


def _user_array(name: str, column: str, values: Any, n: int) -> np.ndarray:
    try:
        if isinstance(values, pl.Series):
            arr = values.cast(pl.Float64).fill_null(np.nan).to_numpy()
        else:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise StrategyError(f"indicator {name!r}, column {column!r}: values are not numbers ({exc})") from exc
    if arr.ndim != 1 or arr.shape[0] != n:
        raise StrategyError(f"indicator {name!r}, column {column!r}: returned shape {arr.shape} for {n} candles")
    return np.ascontiguousarray(arr)


@functools.cache
def _talib_info(function: str) -> dict[str, Any]:
    return talib.abstract.Function(function).info


def _talib_inputs(function: str) -> list[tuple[str, str | list[str]]]:
    return list(_talib_info(function)["input_names"].items())


def indicator_spec(
    function: Any,
    *,
    column: Any = None,
    columns: Any = None,
    params: Any = None,
    inputs: Any = None,
    lookback_bars: Any = None,
    resolve: bool = True,
) -> IndicatorSpec | None:
    """Validate one ``indicators`` entry of ``quantdag.yaml`` and build its spec.

    ``function`` in upper case is a TA-Lib function: its parameters (names, types, ranges, by a
    call on two candles) and inputs are checked. In lower case it is a user indicator
    (:func:`register_indicator`); with ``resolve=False`` an unregistered one is not an error yet
    (the config file loads before the strategy files that register it) and None is returned.
    ``inputs`` optionally feeds a TA-Lib input another candle column (``{price: volume}``).

    Raises
    ------
    IndicatorConfigError
        Naming the key inside the entry (``function``, ``column``, ``params.<name>``, ...) and the value.
    """
    if not isinstance(function, str) or not function:
        raise IndicatorConfigError(("function",), f"must be a TA-Lib function or a registered indicator name, got {function!r}")
    if (column is None) == (columns is None):
        raise IndicatorConfigError((), "give exactly one of `column` (one output) or `columns` (output -> column)")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise IndicatorConfigError(("params",), f"must be a mapping of parameter -> value, got {type(params).__name__}")
    if column is not None:
        check_column_name(column, ("column",))
    else:
        if not isinstance(columns, Mapping) or not columns:
            raise IndicatorConfigError(("columns",), f"must map at least one output name to a column, got {columns!r}")
        for out, col in columns.items():
            check_column_name(col, ("columns", str(out)))
    if lookback_bars is not None and (isinstance(lookback_bars, bool) or not isinstance(lookback_bars, int) or lookback_bars < 1):
        raise IndicatorConfigError(("lookback_bars",), f"must be an integer >= 1, got {lookback_bars!r}")
    explicit = int(lookback_bars or 0)
    if function in talib_functions():
        return _talib_spec(function, column, columns, dict(params), inputs, explicit)
    if function.upper() in talib_functions() or function.isupper():
        hint = f" (TA-Lib spells it {function.upper()!r})" if function.upper() in talib_functions() else ""
        raise IndicatorConfigError(("function",), f"{function!r} is not a TA-Lib function{hint}; see talib.get_functions()")
    if not _USER_NAME.match(function):
        raise IndicatorConfigError(
            ("function",), f"{function!r} is neither a TA-Lib function (upper case) nor a user indicator name (lower case)"
        )
    if inputs is not None:
        raise IndicatorConfigError(("inputs",), "only TA-Lib functions take `inputs`; a user indicator reads the candles")
    if function not in _USER_INDICATORS:
        if not resolve:
            return None
        raise IndicatorConfigError(
            ("function",),
            f"{function!r} is neither a TA-Lib function nor a registered indicator (registered: {list_indicators()}; "
            "register it with @register_indicator in a file of strategy_paths)",
        )
    return _user_spec(_USER_INDICATORS[function], column, columns, dict(params), explicit)


def _talib_spec(
    function: str, column: Any, columns: Any, params: dict[str, Any], inputs: Any, explicit: int
) -> IndicatorSpec:
    info = _talib_info(function)
    defaults: dict[str, Any] = dict(info["parameters"])
    for p, value in params.items():
        if p not in defaults:
            raise IndicatorConfigError(("params", p), f"unknown parameter of {function}; known: {', '.join(defaults) or 'none'}")
        want_int = isinstance(defaults[p], int)
        ok = not isinstance(value, bool) and isinstance(value, (int, np.integer) if want_int else (int, float, np.integer, np.floating))
        if not ok:
            raise IndicatorConfigError(("params", p), f"must be {'an integer' if want_int else 'a number'}, got {value!r}")
        params[p] = int(value) if want_int else float(value)
    effective = {**defaults, **params}
    if {"fastperiod", "slowperiod"} <= effective.keys() and effective["fastperiod"] >= effective["slowperiod"]:
        # TA-Lib silently swaps them (MACD, APO, PPO, ADOSC): a typo would go unnoticed
        raise IndicatorConfigError(
            ("params", "fastperiod"),
            f"{function} fastperiod ({effective['fastperiod']}) must be < slowperiod ({effective['slowperiod']})",
        )
    names = info["output_names"]
    if column is not None:
        if len(names) != 1:
            raise IndicatorConfigError(("column",), f"{function} has {len(names)} outputs ({', '.join(names)}); map them with `columns`")
        outputs = ((names[0], column),)
    else:
        unknown = [o for o in columns if o not in names]
        if unknown:
            raise IndicatorConfigError(("columns", str(unknown[0])), f"not an output of {function}; outputs: {', '.join(names)}")
        outputs = tuple((o, c) for o, c in columns.items())
    arrays = _talib_arrays(function, inputs)
    try:
        getattr(talib, function)(*(np.ones(2) for _ in arrays), **params)
    except Exception as exc:  # noqa: BLE001 - TA-Lib signals a bad parameter with a bare Exception
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        raise IndicatorConfigError(("params",), f"{function}({shown}) rejected by TA-Lib: {exc}") from None
    f = talib.abstract.Function(function)
    f.set_parameters(params)
    return IndicatorSpec(function, outputs, params, arrays, max(int(f.lookback), explicit))


def _talib_arrays(function: str, inputs: Any) -> tuple[str, ...]:
    """Candle columns passed positionally, in TA-Lib's argument order, after ``inputs`` overrides."""
    declared = _talib_inputs(function)
    override = {} if inputs is None else inputs
    if not isinstance(override, Mapping):
        raise IndicatorConfigError(("inputs",), f"must map a TA-Lib input name to candle column(s), got {override!r}")
    names = [n for n, _ in declared]
    for n in override:
        if n not in names:
            raise IndicatorConfigError(("inputs", str(n)), f"not an input of {function}; inputs: {', '.join(names)}")
    arrays: list[str] = []
    for n, default in declared:
        chosen = override.get(n, default)
        several = isinstance(default, list)
        values = list(chosen) if several and isinstance(chosen, (list, tuple)) else [chosen]
        if several and len(values) != len(default):
            raise IndicatorConfigError(("inputs", n), f"needs {len(default)} columns like {default}, got {chosen!r}")
        for v in values:
            if v not in CANDLE_INPUTS:
                raise IndicatorConfigError(
                    ("inputs", n) if n in override else ("function",),
                    f"{function} reads {v!r}, not a candle column ({', '.join(CANDLE_INPUTS)})",
                )
        arrays += values
    return tuple(arrays)


def _user_spec(ind: UserIndicator, column: Any, columns: Any, params: dict[str, Any], explicit: int) -> IndicatorSpec:
    if ind.params is not None:
        for p in params:
            if p not in ind.params:
                raise IndicatorConfigError(("params", p), f"unknown parameter of {ind.name}; known: {', '.join(ind.params) or 'none'}")
    missing = [p for p in ind.required if p not in params]
    if missing:
        raise IndicatorConfigError(("params",), f"{ind.name} needs parameter(s) {', '.join(missing)}")
    if column is not None:
        if ind.outputs is not None:
            raise IndicatorConfigError(("column",), f"{ind.name} has outputs {', '.join(ind.outputs)}; map them with `columns`")
        outputs: tuple[tuple[str, str], ...] = (("", column),)
    else:
        if ind.outputs is not None:
            unknown = [o for o in columns if o not in ind.outputs]
            if unknown:
                raise IndicatorConfigError(("columns", str(unknown[0])), f"not an output of {ind.name}; outputs: {', '.join(ind.outputs)}")
        outputs = tuple((str(o), c) for o, c in columns.items())
    return IndicatorSpec(ind.name, outputs, params, (), explicit, ind)

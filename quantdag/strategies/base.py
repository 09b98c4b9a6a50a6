"""The strategy contract: typed parameters, frame-in/frame-out steps, guards, and the registry.

Shaped after freqtrade's ``IStrategy`` but smaller and typed:

* settings and tunable parameters are class attributes (:mod:`quantdag.strategies.params`);
* a strategy implements two vectorised steps, :meth:`Strategy.compute_indicators` (candles in,
  candles plus indicator columns out) and :meth:`Strategy.compute_signals` (that frame in, the
  same frame plus ``entry``/``exit`` and optionally ``short_entry``/``short_exit``/``target``
  out);
* users call only :meth:`Strategy.signals`, which runs those steps behind guards: the input must
  be a valid candle frame, must come back unaltered, and the output must have one boolean signal
  per candle on the same timestamps, so a buggy strategy fails loudly instead of back-testing
  nonsense.

Signals on candle ``t`` may use candles ``<= t`` only, and all candles passed in must be closed;
the engine then fills at the open of ``t + 1``. :mod:`quantdag.strategies.lookahead` checks this.

Strategies register by name with :func:`register`, so the pipeline can enumerate them
(:func:`list_strategies`) and build one from stored parameters (:func:`get_strategy`) without
being edited when a strategy is added.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Self, TypeVar

import polars as pl

from quantdag.errors import ConfigurationError, DataError, QuantdagError, StrategyError
from quantdag.strategies.params import Constraint, Param, ParamSpace

#: Boolean signal columns; ``entry`` and ``exit`` are required, the short pair is optional.
SIGNAL_COLUMNS = ("entry", "exit", "short_entry", "short_exit")
#: Optional desired position as a fraction of equity, in [-1, 1], held after candle ``t`` closes.
TARGET_COLUMN = "target"
#: Names a strategy may not use for its own indicator columns.
RESERVED_COLUMNS = ("ts", *SIGNAL_COLUMNS, TARGET_COLUMN)

S = TypeVar("S", bound="Strategy")


# -- signal helpers shared by the built-in strategies -----------------------------------------
def _prev(x: pl.Expr | float) -> pl.Expr | float:
    return x.shift(1) if isinstance(x, pl.Expr) else x


def crossed_above(a: pl.Expr, b: pl.Expr | float) -> pl.Expr:
    """True on the candle where ``a`` goes from ``<= b`` to ``> b``; False where undefined."""
    return ((a > b) & (a.shift(1) <= _prev(b))).fill_null(False)


def crossed_below(a: pl.Expr, b: pl.Expr | float) -> pl.Expr:
    """True on the candle where ``a`` goes from ``>= b`` to ``< b``; False where undefined."""
    return ((a < b) & (a.shift(1) >= _prev(b))).fill_null(False)


def position_state(entry: pl.Expr, exit: pl.Expr, within: int | None = None) -> pl.Expr:
    """Int8 state machine: 1 from an ``entry`` until the next ``exit``, else 0.

    Vectorised as "last event wins" (exit -> 0, entry -> 1, forward-filled). When both fire on
    the same candle the exit wins (flat), as freqtrade ignores an entry that coincides with an
    exit; a repeated entry while already in position changes nothing.

    ``within=N`` re-derives the state from the last ``N`` candles only (``t - N + 1 .. t``,
    starting flat): a position whose entry is ``N`` or more candles old is closed. Without it the
    state at ``t`` can hinge on an event at the very first candle, so it depends on where the
    history starts (:mod:`quantdag.strategies.warmup`); with it, it is a function of a bounded
    window, identical whatever history contains that window.
    """
    event = (
        pl.when(exit.fill_null(False))
        .then(pl.lit(0, dtype=pl.Int8))
        .when(entry.fill_null(False))
        .then(pl.lit(1, dtype=pl.Int8))
        .otherwise(pl.lit(None, dtype=pl.Int8))
    )
    if within is None:
        return event.forward_fill().fill_null(0)
    if isinstance(within, bool) or not isinstance(within, int) or within < 1:
        raise ConfigurationError(f"position_state: within must be an integer >= 1, got {within!r}")
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    last_event = pl.when(event.is_not_null()).then(row).otherwise(None).forward_fill()
    fresh = (row - last_event) < within
    return pl.when(fresh).then(event.forward_fill()).otherwise(pl.lit(0, dtype=pl.Int8)).fill_null(0).cast(pl.Int8)


# -- input checks ---------------------------------------------------------------------------
def check_candles(candles: pl.DataFrame, required: tuple[str, ...], owner: str = "") -> None:
    """Reject a frame the strategies cannot trust: missing columns, bad ts, null/NaN prices.

    Raises
    ------
    DataError
        Naming the column (and first offending timestamp) at fault.
    """
    who = f"{owner}: " if owner else ""
    if not isinstance(candles, pl.DataFrame):
        raise DataError(f"{who}candles must be a polars DataFrame, got {type(candles).__name__}")
    missing = [c for c in ("ts", *required) if c not in candles.columns]
    if missing:
        raise DataError(f"{who}candles lack column(s) {missing}; got {candles.columns}")
    ts = candles["ts"]
    if not (isinstance(ts.dtype, pl.Datetime) or ts.dtype.is_integer()):
        raise DataError(f"{who}column 'ts' must be a datetime or integer epoch, got {ts.dtype}")
    if ts.null_count():
        raise DataError(f"{who}column 'ts' has {ts.null_count()} null value(s)")
    if candles.height > 1:
        step = ts.to_physical().diff().slice(1)
        bad = (step <= 0).arg_true()
        if bad.len():
            raise DataError(f"{who}column 'ts' must be strictly increasing; it is not at {ts[int(bad[0]) + 1]}")
    for name in required:
        col = candles[name]
        if not col.dtype.is_numeric():
            raise DataError(f"{who}column {name!r} must be numeric, got {col.dtype}")
        bad = (col.is_null() | col.is_nan()) if col.dtype.is_float() else col.is_null()
        if bad.any():
            raise DataError(f"{who}column {name!r} has null/NaN value(s), first at ts={ts[int(bad.arg_true()[0])]}")


def _fingerprint(frame: pl.DataFrame) -> tuple[pl.Schema, pl.DataFrame]:
    # Values are hashed into fresh memory, so a change made through shared buffers still shows.
    return frame.schema, frame.select(pl.all().hash(seed=0))


def _describe_changes(before: tuple[pl.Schema, pl.DataFrame], after: pl.DataFrame) -> list[str]:
    schema, hashes = before
    now_schema, now = _fingerprint(after)
    changes = [f"column {c!r} removed" for c in schema if c not in now_schema]
    changes += [f"column {c!r} added" for c in now_schema if c not in schema]
    for c, dtype in schema.items():
        if c in now_schema and (now_schema[c] != dtype or not now[c].equals(hashes[c])):
            changes.append(f"column {c!r} changed")
    if not changes and list(schema) != list(now_schema):
        changes.append("columns reordered")
    return changes


class Strategy(ABC):
    """Base class of every strategy: declare parameters, implement two vectorised steps.

    Subclasses set :attr:`name`, declare parameters as class attributes built with
    :func:`~quantdag.strategies.params.IntParam` & co., list cross-parameter
    :attr:`constraints`, and implement :meth:`compute_signals` (plus usually
    :meth:`compute_indicators`). Indicators must come from :mod:`quantdag.indicators`.

    Instances are immutable and validated on construction::

        SmaCross(fast=10, slow=50)                  # keyword parameters
        get_strategy("sma_cross").from_params({})   # stored parameters, defaults filled in

    Raises
    ------
    ConfigurationError
        On construction, naming the parameter and value: unknown parameter, wrong type, out of
        range, not a valid choice, or a violated constraint such as ``fast < slow``.
    """

    #: Registry name; also the strategy's name in storage keys and MLflow.
    name: ClassVar[str] = ""
    #: Candle columns the strategy reads besides ``ts``; checked before any work.
    required_columns: ClassVar[tuple[str, ...]] = ("close",)
    #: Rules across parameters, checked after each value is valid.
    constraints: ClassVar[tuple[Constraint, ...]] = ()
    #: Whether the strategy emits ``short_entry``/``short_exit`` (freqtrade's ``can_short``).
    can_short: ClassVar[bool] = False
    _param_defs: ClassVar[dict[str, Param[Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defs: dict[str, Param[Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Param):
                    defs[attr] = value
                elif attr in defs:  # a subclass may drop an inherited parameter by rebinding it
                    del defs[attr]
        clash = [n for n in defs if hasattr(Strategy, n)]
        if clash:
            raise TypeError(f"{cls.__qualname__}: parameter name(s) {clash} clash with Strategy attributes")
        cls._param_defs = defs
        if not inspect.isabstract(cls):
            defaults = {n: p.default for n, p in defs.items()}
            broken = [c.expr for c in cls.constraints if not c.check(defaults)]
            if broken:
                raise TypeError(f"{cls.__qualname__}: default parameters violate {broken}")

    def __init__(self, **params: Any) -> None:
        self._values: dict[str, Any] = self.validate_params(params)

    # -- parameters ------------------------------------------------------------------------------
    @classmethod
    def param_defs(cls) -> Mapping[str, Param[Any]]:
        """Declared parameters by name, in declaration order."""
        return dict(cls._param_defs)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Default value of every parameter."""
        return {n: copy.deepcopy(p.default) for n, p in cls._param_defs.items()}

    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Complete, canonical parameter values; raises before any work if one is invalid.

        Raises
        ------
        ConfigurationError
            Naming the strategy, the parameter and the value.
        """
        owner = cls.name or cls.__qualname__
        if not isinstance(params, Mapping):
            raise ConfigurationError(f"{owner}: parameters must be a mapping, got {type(params).__name__}")
        unknown = [k for k in params if k not in cls._param_defs]
        if unknown:
            shown = ", ".join(f"{k!r} (= {params[k]!r})" for k in unknown)
            raise ConfigurationError(
                f"{owner}: unknown parameter {shown}; known parameters: {', '.join(cls._param_defs) or 'none'}"
            )
        values = {n: p.validate(params[n] if n in params else p.default, owner=owner) for n, p in cls._param_defs.items()}
        for c in cls.constraints:
            if not c.check(values):
                raise ConfigurationError(f"{owner}: {c.explain(values)}")
        return values

    @classmethod
    def from_valid(cls, values: Mapping[str, Any]) -> Self:
        """Build from values that already passed :meth:`validate_params` (e.g. a sweep's grid,
        thousands at a time) without validating them again."""
        obj = cls.__new__(cls)
        obj._values = dict(values)
        return obj

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None) -> Self:
        """Build from a stored mapping (e.g. JSON from a partition key or MLflow); ``None`` = defaults."""
        params = {} if params is None else params
        if not isinstance(params, Mapping):
            raise ConfigurationError(f"{cls.name}: parameters must be a mapping, got {type(params).__name__}")
        return cls(**{str(k): v for k, v in params.items()})

    @classmethod
    def param_space(cls) -> ParamSpace:
        """The optimizer's view of the parameters (grid, sampling, Optuna dims)."""
        return ParamSpace(cls.name, tuple(cls._param_defs.values()), tuple(cls.constraints))

    def with_params(self, **changes: Any) -> Self:
        """A new instance with some parameters changed (validated again)."""
        return type(self)(**{**self._values, **changes})

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter value, defaults included (a copy, JSON-serialisable)."""
        return copy.deepcopy(self._values)

    @property
    def params_json(self) -> str:
        """Canonical JSON of :attr:`params`: sorted keys, no spaces (stable across runs)."""
        return json.dumps(self._values, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def params_hash(self) -> str:
        """First 12 hex digits of the SHA-256 of :attr:`params_json`: a short storage key."""
        return hashlib.sha256(self.params_json.encode()).hexdigest()[:12]

    @property
    def key(self) -> str:
        """``"<name>-<params_hash>"``, unique per strategy and parameter set."""
        return f"{self.name}-{self.params_hash}"

    @property
    def startup_candles(self) -> int:
        """Leading candles after which the signals no longer depend on where the history starts.

        Covers the indicators' convergence (an EMA or Wilder average keeps a fading memory of its
        seed, :func:`quantdag.indicators.ema_settle`) and any state re-derived from a bounded
        window, not just the first defined value: signals may fire earlier, on defined but not yet
        converged indicators. A backtest of a period that must not depend on where the history
        starts should load this much extra history before it; ``quantdag check`` verifies the
        declared value (:mod:`quantdag.strategies.warmup`).
        """
        return 0

    def input_columns(self) -> tuple[str, ...]:
        """Candle columns this instance reads (instance-level so composites can merge them)."""
        return self.required_columns

    @property
    def frame_peers(self) -> tuple[str, ...]:
        """Other markets (symbols, same venue and timeframe) whose closes this instance reads: the
        pipeline adds them to its frame as ``peer_close_<symbol>`` columns
        (:func:`quantdag.markets.peer_close_column`). Most strategies read one market: ()."""
        return ()

    def emits_shorts(self) -> bool:
        """Whether :meth:`signals` has ``short_entry``/``short_exit`` (fixed, never data-dependent)."""
        return self.can_short

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params_json == self.params_json  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.params_json))

    # -- the two steps a strategy implements -------------------------------------------------------
    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        """Return ``candles`` with the indicator columns this strategy needs added.

        Must not alter ``candles`` (build a new frame with ``with_columns``) and must use only
        rows ``<= t`` to compute row ``t``.
        """
        return candles

    @abstractmethod
    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return ``frame`` with Boolean ``entry``/``exit`` (and optional short/target) columns."""

    # -- the guarded public entry point ----------------------------------------------------------
    def signals(self, candles: pl.DataFrame) -> pl.DataFrame:
        """Signals for closed candles, with the indicator columns computed for inspection.

        Parameters
        ----------
        candles
            Closed candles: ``ts`` (datetime or epoch, strictly increasing) plus the columns in
            :meth:`input_columns`, without null/NaN.

        Returns
        -------
        polars.DataFrame
            One row per candle: ``ts``; ``entry`` and ``exit`` (Boolean, never null: warm-up is
            False); ``short_entry``/``short_exit`` and ``target`` (Float64 in [-1, 1], null
            warm-up becomes 0.0) if the strategy produces them; then its indicator columns.

        Raises
        ------
        DataError
            If ``candles`` breaks the input contract.
        StrategyError
            If the strategy altered its input, changed the row count or timestamps, or produced
            ill-typed or out-of-range signals.
        """
        check_candles(candles, self.input_columns(), self.name)
        before = _fingerprint(candles)
        try:
            frame = self._run_step("compute_indicators", self.compute_indicators, candles)
            self._check_frame(frame, candles, "compute_indicators")
            result = self._run_step("compute_signals", self.compute_signals, frame)
            self._check_frame(result, candles, "compute_signals")
        finally:
            changes = _describe_changes(before, candles)
            if changes:
                raise StrategyError(f"{self.name}: altered its input frame ({'; '.join(changes)})")
        return self._assemble(result, candles)

    def _run_step(self, step: str, fn: Any, frame: pl.DataFrame) -> Any:
        # User code runs here: our own errors pass through, anything else is blamed on the step.
        try:
            return fn(frame)
        except QuantdagError:
            raise
        except Exception as exc:
            raise StrategyError(f"{self.name}: {step} failed: {type(exc).__name__}: {exc}") from exc

    def _check_frame(self, frame: object, candles: pl.DataFrame, step: str) -> None:
        if not isinstance(frame, pl.DataFrame):
            raise StrategyError(f"{self.name}: {step} returned {type(frame).__name__}, not a polars DataFrame")
        if frame.height != candles.height:
            raise StrategyError(f"{self.name}: {step} returned {frame.height} rows for {candles.height} candles")
        if "ts" not in frame.columns or not frame["ts"].equals(candles["ts"]):
            raise StrategyError(f"{self.name}: {step} changed or dropped the 'ts' column")

    def _assemble(self, result: pl.DataFrame, candles: pl.DataFrame) -> pl.DataFrame:
        missing = [c for c in ("entry", "exit") if c not in result.columns]
        if missing:
            raise StrategyError(f"{self.name}: compute_signals produced no {missing} column(s)")
        shorts = [c for c in ("short_entry", "short_exit") if c in result.columns]
        if self.emits_shorts() != bool(shorts) or len(shorts) == 1:
            raise StrategyError(
                f"{self.name}: short columns {shorts} do not match can_short={self.emits_shorts()} "
                "(a short strategy must produce both short_entry and short_exit, others neither)"
            )
        columns: list[pl.Series] = [candles["ts"]]
        for name in ("entry", "exit", *shorts):
            col = result[name]
            if col.dtype != pl.Boolean:
                raise StrategyError(f"{self.name}: column {name!r} must be Boolean, got {col.dtype}")
            columns.append(col.fill_null(False))
        if TARGET_COLUMN in result.columns:
            columns.append(self._checked_target(result[TARGET_COLUMN], candles["ts"]))
        extra = [c for c in result.columns if c not in candles.columns and c not in RESERVED_COLUMNS]
        return pl.DataFrame(columns).hstack([result[c] for c in extra])

    def _checked_target(self, target: pl.Series, ts: pl.Series) -> pl.Series:
        if not target.dtype.is_numeric():
            raise StrategyError(f"{self.name}: column 'target' must be numeric, got {target.dtype}")
        target = target.cast(pl.Float64)
        bad = target.is_nan() | (target.abs() > 1.0)
        if bad.fill_null(False).any():
            i = int(bad.fill_null(False).arg_true()[0])
            raise StrategyError(f"{self.name}: target must be in [-1, 1], got {target[i]} at ts={ts[i]}")
        return target.fill_null(0.0)


# -- registry ----------------------------------------------------------------------------------
_REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[S]) -> type[S]:
    """Class decorator: make a strategy available by its :attr:`Strategy.name`.

    Raises
    ------
    ConfigurationError
        If the class has no name, is abstract, or the name belongs to another strategy.
    """
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigurationError(f"register expects a Strategy subclass, got {cls!r}")
    name = cls.name
    if not name or not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise ConfigurationError(f"{cls.__qualname__}: name must be a non-empty identifier, got {name!r}")
    if inspect.isabstract(cls):
        raise ConfigurationError(f"{cls.__qualname__}: cannot register an abstract strategy")
    known = _REGISTRY.get(name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ConfigurationError(f"strategy name {name!r} is already registered by {known.__module__}.{known.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a registered strategy (for tests and notebooks that register temporary ones)."""
    _REGISTRY.pop(name, None)


def list_strategies() -> list[str]:
    """Names of all registered strategies, sorted."""
    return sorted(_REGISTRY)


def get_strategy(name: str) -> type[Strategy]:
    """The registered strategy class called ``name``.

    Raises
    ------
    ConfigurationError
        If no strategy has that name; the message lists the known names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown strategy {name!r}; known strategies: {', '.join(list_strategies())}") from None


def create_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Shortcut for ``get_strategy(name).from_params(params)``."""
    return get_strategy(name).from_params(params)

"""Typed strategy parameters: validation for users, search spaces for optimizers.

A parameter is declared once, on the strategy class (as freqtrade's ``IntParameter`` & co.), and
that one declaration serves three readers:

* the user building a strategy, whose values are checked **before any work** (type, hard bounds,
  choices, cross-parameter constraints) with a message naming the parameter and the value;
* the optimizer, through :class:`ParamSpace`: grid enumeration, seeded random sampling and the
  name/kind/low/high/step/choices an Optuna trial needs, all respecting the constraints;
* storage, which keys results by the canonical JSON of the validated values.

Two ranges exist on purpose: ``low``/``high`` are the *valid* bounds (an RSI threshold must lie in
[0, 100]), ``search`` is the narrower range worth exploring (15..40 for "oversold"). Validating
against the search range would reject perfectly legal user settings; searching the valid range
would waste an optimizer's budget on nonsense.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, overload

import numpy as np

from quantdag.errors import ConfigurationError

ParamKind = Literal["int", "float", "bool", "choice", "object"]
T = TypeVar("T")

_MAX_SAMPLE_TRIES = 10_000


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return _is_int(value) or isinstance(value, (float, np.floating))


@dataclass(frozen=True)
class Param(Generic[T]):
    """One declared strategy parameter; build it with :func:`IntParam` and friends.

    As a class attribute of a :class:`~quantdag.strategies.base.Strategy` it is a read-only
    descriptor: ``strategy.fast`` returns the validated value of that instance.

    Attributes
    ----------
    kind
        ``"int"``, ``"float"``, ``"bool"``, ``"choice"`` or ``"object"`` (a structured value such
        as consensus members: validated by ``normalize``, never searched).
    default
        Value used when the user gives none; must itself be valid.
    low, high
        Inclusive valid bounds (numeric kinds); values outside are rejected.
    step
        Grid spacing (numeric kinds); also the granularity of random samples.
    choices
        Allowed values (``choice``; ``bool`` is implicitly ``(False, True)``).
    description
        What the parameter does, shown by the CLI and in error messages.
    search
        ``(low, high)`` explored by optimizers; defaults to the valid bounds.
    log
        Sample on a log scale (Optuna's ``log=True``); numeric kinds without ``step`` only.
    optimize
        ``False`` keeps the parameter at its default in :class:`ParamSpace` (still settable).
    normalize
        For ``object`` parameters: returns the canonical JSON-able value or raises
        :class:`ConfigurationError`.
    """

    kind: ParamKind
    default: T
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    description: str = ""
    search: tuple[float, float] | None = None
    log: bool = False
    optimize: bool = True
    normalize: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = f"parameter declaration (default {self.default!r})"
        if self.kind in ("int", "float"):
            if self.low is None or self.high is None or not self.low <= self.high:
                raise ConfigurationError(f"{where}: needs low <= high, got {self.low!r}, {self.high!r}")
            if self.step is not None and not self.step > 0:
                raise ConfigurationError(f"{where}: step must be > 0, got {self.step!r}")
            lo, hi = self.search_bounds
            if not self.low <= lo <= hi <= self.high:
                raise ConfigurationError(f"{where}: search range {self.search!r} outside [{self.low}, {self.high}]")
            if self.log and (self.step is not None or lo <= 0):
                raise ConfigurationError(f"{where}: log scale needs no step and a positive search range")
        if self.kind == "choice" and not self.choices:
            raise ConfigurationError(f"{where}: a choice parameter needs choices")
        if self.kind == "object" and self.normalize is None:
            raise ConfigurationError(f"{where}: an object parameter needs a normalize function")

    # -- descriptor protocol: Strategy instances expose validated values as attributes --------
    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Param[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Param[T] | T:
        if obj is None:
            return self
        return obj._values[self.name]  # type: ignore[attr-defined,no-any-return]

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError(f"parameter {self.name!r} is read-only; build a new strategy with with_params()")

    # -- validation ------------------------------------------------------------------------------
    @property
    def search_bounds(self) -> tuple[float, float]:
        """The range an optimizer explores (numeric kinds)."""
        if self.search is not None:
            return self.search
        assert self.low is not None and self.high is not None
        return (self.low, self.high)

    @property
    def tunable(self) -> bool:
        """Whether optimizers vary this parameter."""
        return self.optimize and self.kind != "object"

    def validate(self, value: Any, *, owner: str = "") -> Any:
        """The canonical form of ``value`` (int, float, bool, a choice or normalised object).

        Raises
        ------
        ConfigurationError
            Naming the strategy, the parameter and the value, if it has the wrong type, lies
            outside ``[low, high]`` or is not one of ``choices``.
        """
        where = f"{owner + ': ' if owner else ''}parameter {self.name!r}"
        given = value  # messages quote the value as the user wrote it (120, not 120.0)
        if self.kind == "int":
            if not _is_int(value):
                raise ConfigurationError(f"{where} must be an integer, got {value!r} ({type(value).__name__})")
            value = int(value)
        elif self.kind == "float":
            if not _is_real(value) or not math.isfinite(float(value)):
                raise ConfigurationError(f"{where} must be a finite number, got {value!r}")
            value = float(value)
        elif self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigurationError(f"{where} must be true or false, got {value!r}")
            return bool(value)
        elif self.kind == "choice":
            if value not in self.choices or isinstance(value, bool) != isinstance(self.choices[0], bool):
                raise ConfigurationError(f"{where} must be one of {list(self.choices)!r}, got {value!r}")
            return value
        else:
            assert self.normalize is not None
            try:
                return self.normalize(value)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}: {exc}") from exc
        assert self.low is not None and self.high is not None
        if not self.low <= value <= self.high:
            raise ConfigurationError(f"{where} must be in [{self.low:g}, {self.high:g}], got {given!r}")
        return value

    def grid_values(self) -> tuple[Any, ...]:
        """The values a grid search visits: ``step``-spaced over ``search``, or every choice."""
        if self.kind == "bool":
            return (False, True)
        if self.kind == "choice":
            return self.choices
        if self.kind == "object":
            return (self.default,)
        lo, hi = self.search_bounds
        if self.step is None:
            raise ConfigurationError(f"parameter {self.name!r} has no step, so it cannot be enumerated on a grid")
        count = int(math.floor((hi - lo) / self.step + 1e-9)) + 1
        if self.kind == "int":
            return tuple(int(round(lo + i * self.step)) for i in range(count))
        return tuple(round(lo + i * self.step, 12) for i in range(count))

    def sample(self, rng: random.Random) -> Any:
        """One random value from the search range (on the step grid when there is a step)."""
        if self.kind in ("bool", "choice", "object") or self.step is not None:
            return rng.choice(self.grid_values())
        lo, hi = self.search_bounds
        if self.log:
            value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            value = rng.uniform(lo, hi)
        return int(round(value)) if self.kind == "int" else value


def IntParam(
    default: int,
    *,
    low: int,
    high: int,
    step: int | None = 1,
    search: tuple[int, int] | None = None,
    description: str = "",
    log: bool = False,
    optimize: bool = True,
) -> Param[int]:
    """An integer parameter (periods, windows). See :class:`Param` for the fields."""
    return Param("int", default, low, high, step, (), description, search, log, optimize)


def FloatParam(
    default: float,
    *,
    low: float,
    high: float,
    step: float | None = None,
    search: tuple[float, float] | None = None,
    description: str = "",
    log: bool = False,
    optimize: bool = True,
) -> Param[float]:
    """A real-valued parameter (thresholds, fractions). See :class:`Param` for the fields."""
    return Param("float", float(default), low, high, step, (), description, search, log, optimize)


def BoolParam(default: bool, *, description: str = "", optimize: bool = True) -> Param[bool]:
    """An on/off switch; optimizers try both values."""
    return Param("bool", default, description=description, optimize=optimize)


def ChoiceParam(
    default: str, *, choices: Sequence[str], description: str = "", optimize: bool = True
) -> Param[str]:
    """One of a fixed set of strings (e.g. ``ma_type`` in ``("sma", "ema")``)."""
    return Param("choice", default, choices=tuple(choices), description=description, optimize=optimize)


def ObjectParam(default: T, *, normalize: Callable[[Any], T], description: str = "") -> Param[T]:
    """A structured, never-searched value (e.g. consensus members), checked by ``normalize``."""
    return Param("object", default, description=description, optimize=False, normalize=normalize)


@dataclass(frozen=True)
class Constraint:
    """A rule across parameters, with a readable expression used in error messages.

    Parameters
    ----------
    expr
        Human-readable rule, e.g. ``"fast < slow"``; parameter names in it are quoted with their
        values when the rule is violated.
    check
        Returns ``True`` when a complete (validated) parameter mapping satisfies the rule.
    """

    expr: str
    check: Callable[[Mapping[str, Any]], bool] = field(compare=False)

    def names(self, known: Sequence[str]) -> tuple[str, ...]:
        """The parameters among ``known`` mentioned in :attr:`expr`, in declaration order."""
        return tuple(n for n in known if re.search(rf"\b{re.escape(n)}\b", self.expr))

    def explain(self, values: Mapping[str, Any]) -> str:
        """``"constraint 'fast < slow' violated by fast=50, slow=10"``."""
        shown = ", ".join(f"{n}={values[n]!r}" for n in self.names(list(values)))
        return f"constraint '{self.expr}' violated" + (f" by {shown}" if shown else "")


def less_than(a: str, b: str) -> Constraint:
    """The constraint ``a < b`` (e.g. a fast period below the slow one)."""
    return Constraint(f"{a} < {b}", lambda p: bool(p[a] < p[b]))


@dataclass(frozen=True)
class ParamDim:
    """One searched dimension, in the shape Optuna's ``suggest_*`` calls take."""

    name: str
    kind: ParamKind
    low: float | None
    high: float | None
    step: float | None
    choices: tuple[Any, ...]
    default: Any
    log: bool = False


@dataclass(frozen=True)
class ParamSpace:
    """The searchable part of a strategy's parameters, for optimizers.

    Every mapping it yields is complete (fixed values included) and satisfies the strategy's
    constraints, so it can be passed straight to ``Strategy.from_params``.
    """

    strategy: str
    params: tuple[Param[Any], ...]
    constraints: tuple[Constraint, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> tuple[ParamDim, ...]:
        """Searched dimensions: tunable parameters not pinned by :meth:`fix`."""
        out = []
        for p in self.params:
            if p.tunable and p.name not in self.fixed:
                lo, hi = p.search_bounds if p.kind in ("int", "float") else (None, None)
                choices = (False, True) if p.kind == "bool" else p.choices
                out.append(ParamDim(p.name, p.kind, lo, hi, p.step, choices, p.default, p.log))
        return tuple(out)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the searched dimensions."""
        return tuple(d.name for d in self.dims)

    def _base(self) -> dict[str, Any]:
        base = {p.name: p.default for p in self.params}
        base.update(self.fixed)
        return base

    def fix(self, **values: Any) -> ParamSpace:
        """A space with some parameters pinned (validated) and removed from the search."""
        by_name = {p.name: p for p in self.params}
        fixed = dict(self.fixed)
        for name, value in values.items():
            if name not in by_name:
                raise ConfigurationError(f"{self.strategy}: unknown parameter {name!r}; known: {', '.join(by_name)}")
            fixed[name] = by_name[name].validate(value, owner=self.strategy)
        return ParamSpace(self.strategy, self.params, self.constraints, fixed)

    def violations(self, values: Mapping[str, Any]) -> list[str]:
        """Readable descriptions of the constraints ``values`` breaks (empty when valid)."""
        full = {**self._base(), **values}
        return [c.explain(full) for c in self.constraints if not c.check(full)]

    def is_valid(self, values: Mapping[str, Any]) -> bool:
        """Whether ``values`` (completed with defaults) satisfies every constraint."""
        return not self.violations(values)

    def grid_size(self) -> int:
        """Number of grid points before constraints are applied (to budget a search)."""
        return math.prod(len(p.grid_values()) for p in self.params if p.name in self.names)

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination of the dimensions' grid values that satisfies the constraints."""
        dims = [p for p in self.params if p.name in self.names]
        base = self._base()
        for combo in itertools.product(*(p.grid_values() for p in dims)):
            values = {**base, **{p.name: v for p, v in zip(dims, combo, strict=True)}}
            if all(c.check(values) for c in self.constraints):
                yield values

    def sample(self, n: int, *, seed: int | None = 0) -> list[dict[str, Any]]:
        """``n`` random valid parameter sets (rejection sampling; reproducible for a seed).

        Raises
        ------
        ConfigurationError
            If no valid set is found in many tries (contradictory constraints or search ranges).
        """
        rng = random.Random(seed)
        dims = [p for p in self.params if p.name in self.names]
        base = self._base()
        out: list[dict[str, Any]] = []
        tries = 0
        while len(out) < n:
            values = {**base, **{p.name: p.sample(rng) for p in dims}}
            if all(c.check(values) for c in self.constraints):
                out.append(values)
            tries += 1
            if tries > _MAX_SAMPLE_TRIES * max(n, 1):
                raise ConfigurationError(
                    f"{self.strategy}: only {len(out)} of {n} sampled parameter sets satisfy the constraints "
                    f"after {tries} tries; widen the search ranges"
                )
        return out

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna ``trial`` for every dimension; returns a complete parameter mapping.

        Constraints are not enforced here (Optuna cannot express them in its samplers): check
        :meth:`violations` and prune or penalise the trial.
        """
        values = self._base()
        for d in self.dims:
            if d.kind == "int":
                assert d.low is not None and d.high is not None
                step = 1 if d.step is None else int(d.step)
                values[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), step=step, log=d.log)
            elif d.kind == "float":
                values[d.name] = trial.suggest_float(d.name, d.low, d.high, step=d.step, log=d.log)
            else:
                values[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        return values

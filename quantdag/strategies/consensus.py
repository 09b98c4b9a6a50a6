"""Multi-strategy consensus: registered strategies vote, the consensus trades when enough agree.

Each member votes with the position its own signals imply, rebuilt from its ``entry``/``exit``
(and ``short_entry``/``short_exit``) columns by :func:`~quantdag.strategies.base.position_state`:
+1 long, -1 short, 0 flat. Members' ``target`` columns are not used: a vote is a direction.
The position is replayed from the member's signals of the last ``memory`` candles only (an entry
older than that, with no exit since, votes flat): a member's position can otherwise hinge on an
entry arbitrarily far back, i.e. on where the history starts, and a backtest from another date
would vote differently on the same candles (:mod:`quantdag.strategies.warmup`). The default, 500
candles, is longer than any position of the default members seen on BTC 5m and 1h candles.

Per candle, ``agree_long`` is the share of votes that are long (weighted by the members'
weights in ``"weighted"`` mode, one vote each otherwise). The consensus is long when

* ``"majority"`` / ``"weighted"``: ``agree_long > 0.5`` and ``agree_long >= min_agreement``;
* ``"unanimous"``: every member is long (``min_agreement`` is then irrelevant);

and short by the same rules on ``agree_short``. A member marked ``filter`` does not vote: it gates.
The consensus may be long only while every filter member is long, and short only while every
filter member is short. With a ``sentiment`` member as filter, e.g. ``{name: sentiment, params:
{entry_level: -0.2, exit_level: -0.3}, filter: true}``, the voters' longs are vetoed while the
news is fearful (the filter's frame needs the candles' sentiment columns, which the pipeline joins). ``entry`` fires when the consensus turns long,
``exit`` when it stops being long; ``target`` is the agreeing share (``agree_long`` while long,
``-agree_short`` while short, 0 otherwise), so conviction sizes the position in the engine's
target mode. ``short_entry``/``short_exit``/``agree_short`` appear only if a member can go short
(:meth:`~quantdag.strategies.base.Strategy.emits_shorts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from quantdag.errors import ConfigurationError
from quantdag.strategies.base import Strategy, create_strategy, position_state, register
from quantdag.strategies.params import ChoiceParam, FloatParam, IntParam, ObjectParam

MODES = ("majority", "weighted", "unanimous")
_EPS = 1e-12  # shares are sums of float weights; don't let rounding flip a >= comparison


@dataclass(frozen=True)
class MemberSpec:
    """One voter: a registered strategy name, its parameters and its weight (> 0); ``filter``: it gates instead of voting."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    filter: bool = False


def _as_spec(member: Any, i: int) -> MemberSpec:
    if isinstance(member, MemberSpec):
        return member
    if isinstance(member, str):
        return MemberSpec(member)
    if isinstance(member, Mapping):
        unknown = set(member) - {"name", "params", "weight", "filter"}
        if unknown or "name" not in member:
            raise ConfigurationError(
                f"members[{i}] must have keys name, params (optional), weight (optional), filter (optional); got {sorted(member)}"
            )
        return MemberSpec(member["name"], member.get("params") or {}, member.get("weight", 1.0), member.get("filter", False))
    if isinstance(member, Sequence) and 1 <= len(member) <= 4:
        return MemberSpec(*member)
    raise ConfigurationError(f"members[{i}] must be a name, (name, params, weight) or a mapping; got {member!r}")


def normalize_members(value: Any) -> list[dict[str, Any]]:
    """Validate member specs into canonical JSON-able form (full parameters, float weights).

    Raises
    ------
    ConfigurationError
        Naming the member index and what is wrong: unknown strategy, invalid member
        parameter, non-positive weight.
    """
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or not value:
        raise ConfigurationError(f"must be a non-empty list of members, got {value!r}")
    out = []
    for i, member in enumerate(value):
        spec = _as_spec(member, i)
        try:
            strategy = create_strategy(spec.name, spec.params)
        except ConfigurationError as exc:
            raise ConfigurationError(f"members[{i}] ({spec.name!r}): {exc}") from exc
        w = spec.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ConfigurationError(f"members[{i}] ({spec.name!r}): weight must be a finite number > 0, got {w!r}")
        if not isinstance(spec.filter, bool):
            raise ConfigurationError(f"members[{i}] ({spec.name!r}): filter must be true or false, got {spec.filter!r}")
        # "filter" only when set: the canonical form (and so the parameter hash) of voters-only lists is unchanged
        out.append({"name": spec.name, "params": strategy.params, "weight": float(w), **({"filter": True} if spec.filter else {})})
    if all(m.get("filter") for m in out):
        raise ConfigurationError(f"members: at least one member must vote (not be a filter), got {value!r}")
    return out


DEFAULT_MEMBERS = [
    {"name": "sma_cross", "params": {}, "weight": 1.0},
    {"name": "macd", "params": {}, "weight": 1.0},
    {"name": "rsi", "params": {}, "weight": 1.0},
]


@register
class Consensus(Strategy):
    """Vote of several registered strategies (majority, weighted or unanimous).

    Output columns: ``entry``, ``exit``, ``target`` (agreeing share, signed), ``agree_long``
    (and ``agree_short``, ``short_entry``, ``short_exit`` when a member can go short), and one
    Int8 ``vote_<i>_<name>`` column per member (+1 long, 0 flat, -1 short).
    """

    name = "consensus"
    members = ObjectParam(
        DEFAULT_MEMBERS,
        normalize=normalize_members,
        description="voters: list of {name, params, weight} (or (name, params, weight)) of registered strategies",
    )
    mode = ChoiceParam("majority", choices=MODES, description="'majority', 'weighted' or 'unanimous'")
    min_agreement = FloatParam(
        0.5, low=0.5, high=1.0, step=0.1, description="share of (weighted) votes needed besides a strict majority"
    )
    memory = IntParam(
        500, low=1, high=100_000, step=100, optimize=False,
        description="candles of a member's signals its vote is re-derived from (an older entry no longer counts)",
    )  # fmt: skip

    @cached_property
    def member_strategies(self) -> tuple[Strategy, ...]:
        """The member strategies, built from their validated specs."""
        return tuple(create_strategy(m["name"], m["params"]) for m in self.members)

    @property
    def vote_columns(self) -> tuple[str, ...]:
        """Names of the per-member vote columns."""
        return tuple(f"vote_{i}_{m['name']}" for i, m in enumerate(self.members))

    def input_columns(self) -> tuple[str, ...]:
        cols: dict[str, None] = {}
        for member in self.member_strategies:
            cols.update(dict.fromkeys(member.input_columns()))
        return tuple(cols)

    @property
    def startup_candles(self) -> int:
        # each vote replays the member's settled signals of the last `memory` candles
        return max(m.startup_candles for m in self.member_strategies) + self.memory

    @property
    def frame_peers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for m in self.member_strategies for p in m.frame_peers))

    def emits_shorts(self) -> bool:
        return any(m.emits_shorts() for m in self.member_strategies)

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        votes = []
        for column, member in zip(self.vote_columns, self.member_strategies, strict=True):
            sig = member.signals(candles)  # guarded: members cannot alter candles either
            vote = position_state(pl.col("entry"), pl.col("exit"), within=self.memory)
            if member.emits_shorts():
                vote = vote - position_state(pl.col("short_entry"), pl.col("short_exit"), within=self.memory)
            votes.append(sig.select(vote.cast(pl.Int8).alias(column)).to_series())
        return candles.with_columns(votes)

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        voters = [(c, m) for c, m in zip(self.vote_columns, self.members, strict=True) if not m.get("filter")]
        gates = [pl.col(c) for c, m in zip(self.vote_columns, self.members, strict=True) if m.get("filter")]
        weights = [m["weight"] if self.mode == "weighted" else 1.0 for _, m in voters]
        total = sum(weights)
        cols = [pl.col(c) for c, _ in voters]

        def share(side: int) -> pl.Expr:
            return pl.sum_horizontal([(c == side).cast(pl.Float64) * w for c, w in zip(cols, weights, strict=True)]) / total

        def agreed(side: int, agree: pl.Expr) -> pl.Expr:
            if self.mode == "unanimous":
                return pl.all_horizontal([c == side for c in cols])
            return (agree > 0.5) & (agree >= self.min_agreement - _EPS)

        frame = frame.with_columns(agree_long=share(1), agree_short=share(-1))
        long_ok, short_ok = agreed(1, pl.col("agree_long")), agreed(-1, pl.col("agree_short"))
        if gates:
            long_ok = long_ok & pl.all_horizontal([g == 1 for g in gates])
            short_ok = short_ok & pl.all_horizontal([g == -1 for g in gates])
        state = pl.when(long_ok).then(1).when(short_ok).then(-1).otherwise(0).cast(pl.Int8)
        frame = frame.with_columns(_state=state).with_columns(_prev=pl.col("_state").shift(1).fill_null(0))
        is_long, was_long = pl.col("_state") == 1, pl.col("_prev") == 1
        is_short, was_short = pl.col("_state") == -1, pl.col("_prev") == -1
        out = frame.with_columns(
            entry=is_long & ~was_long,
            exit=~is_long & was_long,
            target=pl.when(is_long)
            .then(pl.col("agree_long"))
            .when(is_short)
            .then(-pl.col("agree_short"))
            .otherwise(0.0),
        )
        if self.emits_shorts():
            return out.with_columns(short_entry=is_short & ~was_short, short_exit=~is_short & was_short).drop(
                "_state", "_prev"
            )
        return out.drop("_state", "_prev", "agree_short")

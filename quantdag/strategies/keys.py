"""Parameter-set keys: the short, UI-legal name of one strategy with one set of parameters.

A parameter set's key is ``"<strategy>-<params_hash>"`` (:attr:`Strategy.key`, e.g.
``sma_cross-3f2a9c1b0d4e``): a Dagster dynamic partition key that the UI's add-partition dialog
accepts. The parameters themselves live beside the key, never inside it: in the configuration
file, in ``signals.param_sets`` once the pipeline has seen the key, and in ``optimize.sweeps`` for a
promoted sweep's best. A bare registered strategy name (``sma_cross``) means its defaults. Keys are
parsed here and nowhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from quantdag.errors import ConfigurationError
from quantdag.strategies.base import Strategy, create_strategy, list_strategies

_KEY_RE = re.compile(r"^(?P<name>.+)-(?P<hash>[0-9a-f]{12})$")


def param_set_key(strategy: Strategy) -> str:
    """The partition key of ``strategy``'s parameter set."""
    return strategy.key


def strategy_name_of(key: str) -> str:
    """The strategy a parameter-set key belongs to (no lookup: works for any key)."""
    m = _KEY_RE.match(key)
    return m["name"] if m else key


def strategy_from_key(key: str, known: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None) -> Strategy:
    """Rebuild the strategy named by a parameter-set key (parameters validated).

    ``known`` maps keys to ``(strategy, params)``: the configured and stored parameter sets. A key
    not in it resolves only if it is a strategy's defaults (``name`` or ``name-<defaults' hash>``).

    Raises
    ------
    ConfigurationError
        If the key names no registered strategy, its parameters are unknown or invalid, or they
        do not hash to the key (the key was made by other parameters).
    """
    if known and key in known:
        name, params = known[key]
        strategy = create_strategy(name, dict(params))
        if key != name and key != strategy.key:
            raise ConfigurationError(f"parameter set {key!r}: its parameters hash to {strategy.key!r}, not to the key")
        return strategy
    name = strategy_name_of(key)
    if name not in list_strategies():
        raise ConfigurationError(
            f"parameter set {key!r}: no registered strategy {name!r}; registered: {', '.join(list_strategies())}"
        )
    strategy = create_strategy(name)
    if key != name and key != strategy.key:
        raise ConfigurationError(
            f"parameter set {key!r}: its parameters are unknown (not in the configuration, the warehouse's "
            f"signals.param_sets or a sweep); add them under strategies.param_sets in quantdag.yaml"
        )
    return strategy


def default_param_sets() -> list[str]:
    """One parameter set per registered strategy, at its defaults."""
    return [create_strategy(name).key for name in list_strategies()]


def configured_param_sets(entries: Iterable[tuple[str, Mapping[str, Any]]], *, defaults: bool = True) -> dict[str, Strategy]:
    """Parameter sets by key: each registered strategy's defaults (if ``defaults``), then ``entries``.

    Raises
    ------
    ConfigurationError
        If an entry names an unregistered strategy or invalid parameters (named in the message).
    """
    out: dict[str, Strategy] = {}
    if defaults:
        for name in list_strategies():
            s = create_strategy(name)
            out[s.key] = s
    for name, params in entries:
        try:
            s = create_strategy(name, dict(params))
        except ConfigurationError as exc:
            raise ConfigurationError(f"strategies.param_sets: {name} {json.dumps(dict(params), sort_keys=True)}: {exc}") from None
        out[s.key] = s
    return out


def param_set_label(strategy: Strategy, *, width: int = 80) -> str:
    """A readable name for people (MLflow run names, tables): ``sma_cross fast=10 slow=50``.

    Values are compact JSON; past ``width`` characters the label ends with the params hash instead.
    """
    parts = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in sorted(strategy.params.items()))
    label = f"{strategy.name} {parts}".strip()
    return label if len(label) <= width else f"{label[: width - 16]}… #{strategy.params_hash}"

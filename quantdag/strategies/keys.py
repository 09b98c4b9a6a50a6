"""Parameter-set keys: the name of one strategy with one set of parameters.

A parameter set is named by its partition key, ``"<strategy> <canonical params JSON>"``: the key
alone rebuilds the strategy, so a Dagster dynamic partition is all it takes to add one, and
the stored ``params_hash`` ties every signal, backtest and MLflow run back to it. A key is
parsed here and nowhere else.
"""

from __future__ import annotations

import json

from quantdag.errors import ConfigurationError
from quantdag.strategies.base import Strategy, create_strategy, list_strategies


def param_set_key(strategy: Strategy) -> str:
    """The partition key of ``strategy``'s parameter set."""
    return f"{strategy.name} {strategy.params_json}"


def strategy_from_key(key: str) -> Strategy:
    """Rebuild the strategy named by a parameter-set key (parameters validated).

    Raises
    ------
    ConfigurationError
        If the key is malformed, names no registered strategy, or holds invalid parameters.
    """
    name, _, params = key.partition(" ")
    try:
        parsed = json.loads(params) if params else {}
    except ValueError as exc:
        raise ConfigurationError(f"parameter set {key!r}: params are not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise ConfigurationError(f"parameter set {key!r}: params must be a JSON object")
    return create_strategy(name, parsed)


def default_param_sets() -> list[str]:
    """One parameter set per registered strategy, at its defaults."""
    return [param_set_key(create_strategy(name)) for name in list_strategies()]

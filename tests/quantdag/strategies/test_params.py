"""Parameter declarations, validation messages and the optimizer's ParamSpace."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdag.errors import ConfigurationError
from quantdag.strategies import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    IntParam,
    Param,
    get_strategy,
    list_strategies,
)


def _named(param: Param, name: str) -> Param:
    param.__set_name__(object, name)
    return param


def test_int_param_float_value_rejected_naming_parameter():
    p = _named(IntParam(10, low=1, high=100), "fast")
    with pytest.raises(ConfigurationError, match=r"'fast' must be an integer, got 10\.5"):
        p.validate(10.5, owner="sma_cross")


@pytest.mark.parametrize("value", [True, "10", None])
def test_int_param_non_integer_types_rejected(value):
    p = _named(IntParam(10, low=1, high=100), "fast")
    with pytest.raises(ConfigurationError, match="'fast' must be an integer"):
        p.validate(value)


def test_int_param_numpy_integer_accepted_as_int():
    p = _named(IntParam(10, low=1, high=100), "fast")
    value = p.validate(np.int64(20))
    assert value == 20 and type(value) is int


@pytest.mark.parametrize("value", [0, 101])
def test_int_param_out_of_range_rejected_with_bounds(value):
    p = _named(IntParam(10, low=1, high=100), "fast")
    with pytest.raises(ConfigurationError, match=rf"'fast' must be in \[1, 100\], got {value}"):
        p.validate(value, owner="sma_cross")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "30", False])
def test_float_param_non_finite_or_non_number_rejected(value):
    p = _named(FloatParam(30.0, low=0.0, high=100.0), "oversold")
    with pytest.raises(ConfigurationError, match="'oversold' must be a finite number"):
        p.validate(value)


def test_float_param_int_value_normalised_to_float():
    p = _named(FloatParam(30.0, low=0.0, high=100.0), "oversold")
    value = p.validate(25)
    assert value == 25.0 and type(value) is float


def test_bool_param_int_rejected():
    p = _named(BoolParam(False), "exit_mid")
    with pytest.raises(ConfigurationError, match="'exit_mid' must be true or false, got 1"):
        p.validate(1)


def test_choice_param_unknown_choice_rejected_listing_choices():
    p = _named(ChoiceParam("sma", choices=("sma", "ema")), "ma_type")
    with pytest.raises(ConfigurationError, match=r"'ma_type' must be one of \['sma', 'ema'\], got 'wma'"):
        p.validate("wma")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: IntParam(5, low=10, high=1), "low <= high"),
        (lambda: IntParam(5, low=1, high=10, step=0), "step must be > 0"),
        (lambda: IntParam(5, low=1, high=10, search=(0, 5)), "search range"),
        (lambda: FloatParam(1.0, low=0.0, high=2.0, step=0.5, log=True), "log scale"),
        (lambda: ChoiceParam("a", choices=()), "needs choices"),
    ],
)
def test_param_declaration_inconsistent_rejected(factory, message):
    with pytest.raises(ConfigurationError, match=message):
        factory()


def test_float_grid_values_rounded_and_inclusive():
    p = FloatParam(0.0, low=0.0, high=0.05, step=0.0005, search=(0.0, 0.002))
    assert p.grid_values() == (0.0, 0.0005, 0.001, 0.0015, 0.002)


def test_float_without_step_grid_rejected():
    p = _named(FloatParam(1.0, low=0.0, high=2.0), "x")
    with pytest.raises(ConfigurationError, match="'x' has no step"):
        p.grid_values()


def test_sma_cross_grid_equals_filtered_product():
    space = get_strategy("sma_cross").param_space()
    fast = range(5, 51, 5)
    slow = range(20, 201, 10)
    expected = [
        {"fast": f, "slow": s, "ma_type": m} for f, s, m in itertools.product(fast, slow, ("sma", "ema")) if f < s
    ]
    grid = list(space.grid())
    assert grid == expected
    assert space.grid_size() == len(fast) * len(slow) * 2


def test_param_space_dims_expose_optuna_fields():
    dims = {d.name: d for d in get_strategy("rsi").param_space().dims}
    assert set(dims) == {"period", "oversold", "overbought", "exit_mid"}  # mid is not searched
    assert (dims["oversold"].kind, dims["oversold"].low, dims["oversold"].high, dims["oversold"].step) == (
        "float",
        15.0,
        40.0,
        5.0,
    )
    assert dims["exit_mid"].choices == (False, True)


def test_consensus_members_not_in_search_space():
    space = get_strategy("consensus").param_space()
    assert "members" not in space.names
    assert all(p["members"] == space.params[0].default for p in itertools.islice(space.grid(), 3))


@pytest.mark.parametrize("name", list_strategies())
def test_every_registered_strategy_samples_valid_reproducible_params(name):
    cls = get_strategy(name)
    space = cls.param_space()
    first, again = space.sample(20, seed=7), space.sample(20, seed=7)
    assert first == again
    for params in first:
        assert space.violations(params) == []
        assert cls.from_params(params).params == cls.validate_params(params)


def test_param_space_fix_pins_value_and_removes_dim():
    space = get_strategy("sma_cross").param_space().fix(ma_type="ema", slow=100)
    assert space.names == ("fast",)
    grid = list(space.grid())
    assert [g["fast"] for g in grid] == list(range(5, 51, 5))
    assert all(g["ma_type"] == "ema" and g["slow"] == 100 for g in grid)


def test_param_space_fix_unknown_or_invalid_rejected():
    space = get_strategy("sma_cross").param_space()
    with pytest.raises(ConfigurationError, match="unknown parameter 'fastt'"):
        space.fix(fastt=3)
    with pytest.raises(ConfigurationError, match="'ma_type' must be one of"):
        space.fix(ma_type="wma")


def test_param_space_violations_name_constraint_and_values():
    space = get_strategy("sma_cross").param_space()
    assert space.violations({"fast": 50, "slow": 20}) == ["constraint 'fast < slow' violated by fast=50, slow=20"]


def test_param_space_sample_impossible_constraints_raise():
    space = get_strategy("sma_cross").param_space().fix(slow=20, fast=20)
    with pytest.raises(ConfigurationError, match="satisfy the constraints"):
        space.sample(1)


def test_param_space_suggest_with_optuna_yields_valid_params():
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_strategy("macd").param_space()
    seen = []

    def objective(trial):
        params = space.suggest(trial)
        if space.violations(params):
            raise optuna.TrialPruned()
        seen.append(params)
        return float(params["fast"] - params["slow"])

    optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).optimize(objective, n_trials=15)
    assert seen
    for params in seen:
        built = get_strategy("macd").from_params(params)
        assert 6 <= built.fast <= 18 and built.fast < built.slow
        assert params["hist_threshold"] in (0.0, 0.0005, 0.001, 0.0015, 0.002)


@settings(max_examples=60, deadline=None)
@given(
    fast=st.one_of(st.integers(-5, 3000), st.floats(allow_nan=True), st.text(max_size=3)),
    slow=st.integers(-5, 6000),
)
def test_sma_cross_arbitrary_params_either_valid_or_error_names_parameter(fast, slow):
    cls = get_strategy("sma_cross")
    try:
        s = cls(fast=fast, slow=slow)
    except ConfigurationError as exc:
        assert "'fast'" in str(exc) or "'slow'" in str(exc) or "fast < slow" in str(exc)
    else:
        assert isinstance(s.fast, int) and 1 <= s.fast < s.slow <= 5000
        assert not (isinstance(fast, float) and math.isnan(fast))

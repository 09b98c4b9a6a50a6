"""The Strategy contract: registry, construction, storage keys, guards and helpers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdag.errors import ConfigurationError, DataError, StrategyError
from quantdag.strategies import (
    SmaCross,
    Strategy,
    create_strategy,
    get_strategy,
    list_strategies,
    position_state,
    register,
    unregister,
)

from .fixture_strategies import with_inputs
from .fixture_strategies import (
    AddsColumnInPlace,
    DropsVolume,
    DropsWarmup,
    IntegerSignals,
    OverwritesClose,
    Raises,
    SmaLongShort,
    TargetTooLarge,
)

BUILTIN = ["consensus", "ema_cross", "macd", "regime_ma", "rsi", "sma_cross"]


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h")


# -- registry -------------------------------------------------------------------------------
def test_list_strategies_builtins_registered_sorted():
    names = list_strategies()
    assert set(BUILTIN) <= set(names)
    assert names == sorted(names)


def test_get_strategy_unknown_name_lists_known_names():
    with pytest.raises(ConfigurationError, match=r"unknown strategy 'smacross'; known strategies: .*sma_cross"):
        get_strategy("smacross")


def test_register_new_strategy_found_by_name_until_unregistered():
    class Temporary(SmaCross):
        name = "temporary_cross"

    try:
        register(Temporary)
        assert "temporary_cross" in list_strategies()
        assert create_strategy("temporary_cross", {"fast": 3, "slow": 7}).params["slow"] == 7
    finally:
        unregister("temporary_cross")
    assert "temporary_cross" not in list_strategies()


def test_register_taken_name_by_other_class_rejected():
    class Impostor(SmaCross):
        name = "sma_cross"

    with pytest.raises(ConfigurationError, match="'sma_cross' is already registered"):
        register(Impostor)
    assert get_strategy("sma_cross") is SmaCross


def test_register_without_name_or_abstract_rejected():
    class Nameless(SmaCross):
        name = ""

    class Abstract(Strategy):
        name = "abstract_one"

    with pytest.raises(ConfigurationError, match="name must be a non-empty identifier"):
        register(Nameless)
    with pytest.raises(ConfigurationError, match="abstract"):
        register(Abstract)


def test_strategy_defaults_violating_constraint_rejected_at_class_definition():
    with pytest.raises(TypeError, match="fast < slow"):

        class Backwards(SmaCross):
            from quantdag.strategies import IntParam

            fast = IntParam(60, low=1, high=100)


def test_parameter_named_like_strategy_attribute_rejected_at_class_definition():
    from quantdag.strategies import IntParam

    with pytest.raises(TypeError, match=r"\['key'\] clash with Strategy attributes"):

        class Clashing(SmaCross):
            key = IntParam(1, low=0, high=2)


# -- construction and storage keys -------------------------------------------------------------
@pytest.mark.parametrize("name", BUILTIN)
def test_strategy_pickle_round_trip_keeps_params(name):
    # Dagster's multiprocess executor pickles what it passes between steps.
    import pickle

    s = create_strategy(name)
    clone = pickle.loads(pickle.dumps(s))
    assert clone == s and clone.params_hash == s.params_hash


def test_sma_cross_fast_not_below_slow_rejected_naming_both():
    with pytest.raises(ConfigurationError, match=r"sma_cross: constraint 'fast < slow' violated by fast=50, slow=50"):
        get_strategy("sma_cross")(fast=50, slow=50)


def test_strategy_unknown_parameter_rejected_naming_it_and_known_ones():
    with pytest.raises(ConfigurationError, match=r"unknown parameter 'fats' \(= 5\); known parameters: fast, slow, ma_type"):
        get_strategy("sma_cross")(fats=5)


def test_from_params_non_mapping_rejected():
    with pytest.raises(ConfigurationError, match="parameters must be a mapping"):
        SmaCross.from_params([("fast", 5)])  # type: ignore[arg-type]


def test_from_params_none_gives_defaults():
    s = SmaCross.from_params(None)
    assert s.params == {"fast": 10, "slow": 50, "ma_type": "sma"} == SmaCross.defaults()


def test_params_hash_same_for_equivalent_inputs():
    a = get_strategy("rsi")(oversold=25, period=14)
    b = get_strategy("rsi").from_params({"period": 14, "oversold": 25.0, "overbought": 70.0, "mid": 50})
    assert a.params_json == b.params_json
    assert a.params_hash == b.params_hash and len(a.params_hash) == 12
    assert a == b and hash(a) == hash(b)


def test_params_hash_known_value_is_stable():
    # Pinned: storage keys and MLflow runs depend on this never changing.
    s = SmaCross(fast=10, slow=50)
    assert s.params_json == '{"fast":10,"ma_type":"sma","slow":50}'
    assert s.params_hash == "f34b1caacc2f"
    assert s.key == "sma_cross-f34b1caacc2f"


def test_params_hash_differs_when_a_param_differs():
    assert SmaCross(fast=10).params_hash != SmaCross(fast=11).params_hash


def test_strategy_params_read_only_and_with_params_revalidates():
    s = SmaCross(fast=5)
    with pytest.raises(AttributeError, match="read-only"):
        s.fast = 7  # type: ignore[misc]
    assert s.with_params(fast=7).fast == 7 and s.fast == 5
    with pytest.raises(ConfigurationError, match="fast < slow"):
        s.with_params(fast=80)


def test_strategy_params_copy_cannot_change_instance():
    s = create_strategy("consensus")
    p = s.params
    p["members"][0]["weight"] = 99.0
    assert s.params["members"][0]["weight"] == 1.0


# -- input checks -----------------------------------------------------------------------------------
def test_signals_missing_column_rejected(candles):
    with pytest.raises(DataError, match=r"lack column\(s\) \['high', 'low'\]"):
        create_strategy("regime_ma").signals(candles.select("ts", "close"))


def test_signals_unsorted_ts_rejected(candles):
    shuffled = pl.concat([candles.slice(10, 5), candles.slice(0, 10)])
    with pytest.raises(DataError, match="strictly increasing"):
        SmaCross().signals(shuffled)


def test_signals_duplicate_ts_rejected(candles):
    with pytest.raises(DataError, match="strictly increasing"):
        SmaCross().signals(pl.concat([candles.head(3), candles.slice(2, 3)]))


def test_signals_nan_close_rejected_with_its_ts(candles):
    bad = candles.with_columns(close=pl.when(pl.int_range(pl.len()) == 7).then(float("nan")).otherwise("close"))
    with pytest.raises(DataError, match=r"'close' has null/NaN value\(s\), first at ts=2023-01-01 07:00"):
        SmaCross().signals(bad)


def test_signals_integer_ts_and_extra_columns_accepted(candles):
    epoch = candles.with_columns(pl.col("ts").dt.epoch("ms"), trades=pl.lit(3))
    out = SmaCross().signals(epoch)
    assert out["ts"].dtype == pl.Int64 and out["entry"].equals(SmaCross().signals(candles)["entry"])


def test_signals_empty_and_tiny_frames_give_no_signals(candles):
    for n in (0, 1, 2, 30):
        for name in list_strategies():
            out = create_strategy(name).signals(with_inputs(name, candles.head(n), quiet=True))
            assert out.height == n and not out["entry"].any() and out["entry"].null_count() == 0


# -- guards -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "what"),
    [
        (AddsColumnInPlace, "column 'sneaky' added"),
        (OverwritesClose, "column 'close' changed"),
        (DropsVolume, "column 'volume' removed"),
    ],
)
def test_signals_strategy_mutating_input_caught(candles, cls, what):
    frame = candles.clone()
    with pytest.raises(StrategyError, match=rf"altered its input frame \({what}\)"):
        cls().signals(frame)


def test_signals_wrong_row_count_caught(candles):
    with pytest.raises(StrategyError, match=r"compute_indicators returned 2156 rows for 2160 candles"):
        DropsWarmup().signals(candles)


def test_signals_integer_signal_columns_rejected(candles):
    with pytest.raises(StrategyError, match="'entry' must be Boolean, got Int8"):
        IntegerSignals().signals(candles)


def test_signals_target_out_of_range_rejected(candles):
    with pytest.raises(StrategyError, match=r"target must be in \[-1, 1\], got 1.5 at ts=2023-01-01 00:00"):
        TargetTooLarge().signals(candles)


def test_signals_user_exception_wrapped_naming_step(candles):
    with pytest.raises(StrategyError, match="raises: compute_indicators failed: ZeroDivisionError"):
        Raises().signals(candles)


def test_signals_short_columns_without_can_short_rejected(candles):
    class Undeclared(SmaLongShort):
        can_short = False

    with pytest.raises(StrategyError, match="do not match can_short=False"):
        Undeclared().signals(candles)


def test_signals_short_strategy_output_has_short_columns(candles):
    out = SmaLongShort().signals(candles)
    assert out.columns[:5] == ["ts", "entry", "exit", "short_entry", "short_exit"]
    assert out["short_entry"].equals(out["exit"])


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_output_contract_holds_on_real_candles(candles, name):
    s = create_strategy(name)
    before = candles.clone()
    out = s.signals(candles)
    assert candles.equals(before)
    assert out.height == candles.height and out["ts"].equals(candles["ts"])
    assert out.columns[:3] == ["ts", "entry", "exit"]
    for col in ("entry", "exit"):
        assert out[col].dtype == pl.Boolean and out[col].null_count() == 0
    # startup_candles is where signals stop depending on the history start (they may fire earlier,
    # on unconverged indicators; test_warmup pins the rest); a crossing always needs a candle before
    assert not out["entry"].head(1).any() and s.startup_candles >= 1
    assert out["entry"].any(), f"{name} never enters on 3 months of 1h candles with default params"
    if "target" in out.columns:
        assert out["target"].null_count() == 0 and out["target"].is_between(-1.0, 1.0).all()


# -- helpers ----------------------------------------------------------------------------------------
def _reference_state(entry: list[bool], exit: list[bool]) -> list[int]:
    state, out = 0, []
    for e, x in zip(entry, exit, strict=True):
        if x:
            state = 0
        elif e:
            state = 1
        out.append(state)
    return out


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60))
def test_position_state_matches_sequential_reference(events):
    entry = [e for e, _ in events]
    exit = [x for _, x in events]
    frame = pl.DataFrame({"entry": entry, "exit": exit}, schema={"entry": pl.Boolean, "exit": pl.Boolean})
    state = frame.select(position_state(pl.col("entry"), pl.col("exit"))).to_series()
    assert state.dtype == pl.Int8
    assert state.to_list() == _reference_state(entry, exit)


def test_position_state_nulls_count_as_no_event():
    frame = pl.DataFrame({"entry": [None, True, None, False], "exit": [None, None, None, True]})
    assert frame.select(position_state(pl.col("entry"), pl.col("exit"))).to_series().to_list() == [0, 1, 1, 0]


def test_crossed_above_scalar_and_series_agree_with_numpy(candles):
    from quantdag.strategies import crossed_above

    close = candles["close"].to_numpy()
    level = float(np.median(close))
    got = candles.select(crossed_above(pl.col("close"), level)).to_series().to_numpy()
    expected = np.r_[False, (close[1:] > level) & (close[:-1] <= level)]
    assert np.array_equal(got, expected) and got.sum() > 0

"""The ``indicators`` section of quantdag.yaml: validated at load naming the entry, resolved to specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from quantdag.config import DEFAULT_CONFIG_PATH, load_config, parse_config
from quantdag.errors import ConfigurationError
from quantdag.features import DEFAULT_INDICATORS, INDICATOR_COLUMNS
from quantdag.indicators import unregister_indicator
from quantdag.strategies.loader import load_strategy_file

BASE = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def _config(indicators):
    return parse_config({**BASE, "indicators": indicators})


def test_indicators_shipped_file_gives_default_specs_and_columns():
    specs = load_config(DEFAULT_CONFIG_PATH).indicator_specs()
    assert specs == DEFAULT_INDICATORS
    assert tuple(c for s in specs for c in s.columns) == INDICATOR_COLUMNS


def test_indicators_section_omitted_defaults_to_shipped_specs():
    data = {k: v for k, v in BASE.items() if k != "indicators"}
    assert parse_config(data).indicator_specs() == DEFAULT_INDICATORS


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"column": "x", "function": "RSII"}], r"indicators\[0\]\.function: 'RSII' is not a TA-Lib function"),
        ([{"column": "x", "function": "rsi"}], r"indicators\[0\]\.function: .*TA-Lib spells it 'RSI'"),
        (
            [{"column": "a", "function": "SMA"}, {"column": "x", "function": "RSI", "params": {"timeperod": 14}}],
            r"indicators\[1\]\.params\.timeperod: unknown parameter of RSI; known: timeperiod",
        ),
        ([{"column": "x", "function": "RSI", "params": {"timeperiod": 2.5}}], r"indicators\[0\]\.params\.timeperiod: must be an integer, got 2\.5"),
        ([{"column": "x", "function": "RSI", "params": {"timeperiod": 1}}], r"indicators\[0\]\.params: RSI\(timeperiod=1\) rejected by TA-Lib"),
        ([{"columns": {"macd": "m"}, "function": "MACD", "params": {"fastperiod": 26, "slowperiod": 12}}],
         r"indicators\[0\]\.params\.fastperiod: MACD fastperiod \(26\) must be < slowperiod \(12\)"),
        ([{"column": "x", "function": "MACD"}], r"indicators\[0\]\.column: MACD has 3 outputs \(macd, macdsignal, macdhist\)"),
        ([{"columns": {"signal": "x"}, "function": "MACD"}], r"indicators\[0\]\.columns\.signal: not an output of MACD"),
        ([{"column": "x", "function": "MAVP"}], r"indicators\[0\]\.function: MAVP reads 'periods', not a candle column"),
        ([{"column": "x", "function": "SMA", "inputs": {"price": "vwap"}}], r"indicators\[0\]\.inputs\.price: SMA reads 'vwap'"),
        ([{"function": "SMA"}], r"indicators\[0\]: give exactly one of `column`"),
        ([{"column": "x", "function": "SMA", "lookback_bars": 0}], r"indicators\[0\]\.lookback_bars"),
        ([], r"indicators: .*at least 1"),
    ],
)
def test_indicators_bad_entry_raises_naming_entry_and_key(entries, message):
    with pytest.raises(ConfigurationError, match=message):
        _config(entries)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("sma 20", "'sma 20' is not a column name"),
        ("SMA_20", "'SMA_20' is not a column name"),
        ("1sma", "'1sma' is not a column name"),
        ("x" * 64, "'x{64}' is not a column name"),
        ("select", "'select' is an SQL reserved word"),
        ("ts", "'ts' is a key column of features.indicators"),
        ("symbol", "'symbol' is a key column"),
    ],
)
def test_indicators_bad_column_name_raises_naming_it(column, message):
    with pytest.raises(ConfigurationError, match=rf"indicators\[0\]\.column: {message}"):
        _config([{"column": column, "function": "SMA", "params": {"timeperiod": 5}}])


def test_indicators_duplicate_column_raises_naming_both_entries():
    entries = [
        {"column": "sma_5", "function": "SMA", "params": {"timeperiod": 5}},
        {"columns": {"macd": "macd", "macdsignal": "sma_5"}, "function": "MACD"},
    ]
    with pytest.raises(ConfigurationError, match=r"indicators\[1\]\.columns\.macdsignal: 'sma_5' is already written by indicators\[0\]"):
        _config(entries)


def test_indicators_unregistered_user_indicator_loads_but_specs_raise_naming_it():
    config = _config([{"column": "my_thing", "function": "my_thing", "params": {"window": 3}}])
    with pytest.raises(ConfigurationError, match=r"indicators\[0\]\.function: 'my_thing' is neither a TA-Lib function nor a registered indicator"):
        config.indicator_specs()


@pytest.fixture
def user_file(tmp_path: Path):
    path = tmp_path / "my_indicators.py"
    path.write_text(
        "import polars as pl\n"
        "from quantdag.indicators import register_indicator\n\n"
        "@register_indicator\n"
        "def range_mean(candles: pl.DataFrame, window: int = 3) -> pl.Series:\n"
        "    return ((candles['high'] - candles['low']) / candles['close']).rolling_mean(window)\n"
    )
    yield path
    unregister_indicator("range_mean")


def test_indicators_user_indicator_from_strategy_file_resolves_after_import(user_file):
    config = _config([*BASE["indicators"], {"column": "range_mean_5", "function": "range_mean", "params": {"window": 5}}])
    load_strategy_file(user_file)
    spec = config.indicator_specs()[-1]
    assert (spec.function, spec.columns, dict(spec.params), spec.user.name) == ("range_mean", ("range_mean_5",), {"window": 5}, "range_mean")


def test_indicators_user_indicator_unknown_parameter_raises_at_specs(user_file):
    config = _config([{"column": "r", "function": "range_mean", "params": {"windw": 5}}])
    load_strategy_file(user_file)
    with pytest.raises(ConfigurationError, match=r"indicators\[0\]\.params\.windw: unknown parameter of range_mean; known: window"):
        config.indicator_specs()

"""quantdag.yaml: the shipped file reproduces the demo; a bad file is refused naming the key and value."""

from __future__ import annotations

import copy
from datetime import date

import pytest
import yaml

from quantdag.config import DEFAULT_CONFIG_PATH, load_config, parse_config
from quantdag.errors import ConfigurationError

SHIPPED = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def _with(change) -> dict:
    data = copy.deepcopy(SHIPPED)
    change(data)
    return data


def test_shipped_config_reproduces_the_demo_universe_and_costs():
    c = load_config()
    assert [m.key for m in c.markets] == [
        "BTC/USDT:1h", "ETH/USDT:1h", "SOL/USDT:1h", "BTC/USDC:1h", "USDC/USDT:1h", "BTC/USDT:4h", "BTC/USDT:1d",
    ]
    assert [m.resample_from for m in c.markets][-2:] == ["1h", "1h"]
    assert [m.key for m in c.research_markets] == ["BTC/USDT:1h", "ETH/USDT:1h", "SOL/USDT:1h"]
    s = c.backtest_settings()
    assert (s.fill, s.fee, s.slippage) == ("next_open", 0.001, 0.0005)
    assert c.venue == "sim" and c.automation.paper_trading is False and c.automation.run_failure_alert is True
    assert c.universe.start(date(2026, 12, 2)) == date(2026, 9, 3)
    fixed = parse_config(_with(lambda d: d["universe"].__setitem__("start_date", "2025-06-01")))  # as JSON would send it
    assert fixed.universe.start() == date(2025, 6, 1)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d["universe"]["markets"][0].__setitem__("timeframes", ["7h"]), r"universe\.markets\[0\]\.timeframes: \['7h'\]"),
        (lambda d: d.__setitem__("exchnage", {}), r"exchnage: Extra inputs are not permitted"),
        (lambda d: d["backtest"].__setitem__("fee", -1), r"backtest: fee must be in \[0\.0, 1\.0\), got -1"),
        (lambda d: d["backtest"].__setitem__("feee", 0.1), r"backtest: unknown setting\(s\) \['feee'\]"),
        (lambda d: d["universe"].__setitem__("research_markets", ["XRP/USDT:1h"]), r"unknown market 'XRP/USDT:1h'"),
        (lambda d: d["risk"].__setitem__("max_drawdown", "lots"), r"risk\.max_drawdown: .*\(got 'lots'\)"),
        (lambda d: d["exchange"].__setitem__("mode", "paper"), r"exchange\.mode: .*\(got 'paper'\)"),
        (lambda d: d["universe"].__setitem__("start_date", "soon"), r"universe\.start_date: .*\(got 'soon'\)"),
        (lambda d: d["events"].__setitem__("peg_references", []), r"events: .*peg_references"),
        (lambda d: d["universe"]["markets"].append({"symbol": "BTC/USDT", "timeframes": ["1h"]}), r"listed twice.*BTC/USDT:1h"),
    ],
)
def test_parse_config_bad_value_raises_naming_key_and_value(change, expected):
    with pytest.raises(ConfigurationError, match=expected):
        parse_config(_with(change))


def test_load_config_follows_quantdag_config_env_and_data_dir_env(tmp_path, monkeypatch):
    mine = _with(lambda d: d.__setitem__("data_dir", "elsewhere"))
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mine))
    monkeypatch.setenv("QUANTDAG_CONFIG", str(path))
    monkeypatch.delenv("QUANTDAG_DATA_DIR", raising=False)
    c = load_config()
    assert c.source == path.resolve() and c.data_path == (tmp_path / "elsewhere").resolve()
    monkeypatch.setenv("QUANTDAG_DATA_DIR", str(tmp_path / "moved"))
    assert load_config().data_path == (tmp_path / "moved").resolve()


def test_load_config_missing_or_not_yaml_file_raises_naming_it(tmp_path):
    with pytest.raises(ConfigurationError, match=r"nope\.yaml cannot be read"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("universe: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)


def test_build_defs_unknown_paper_strategy_raises_naming_it(tmp_path):
    from pipeline_helpers import config_with
    from pipelines.definitions import build_defs

    with pytest.raises(ConfigurationError, match=r"strategies\.paper: unknown strategies \['nope'\]"):
        build_defs(tmp_path, config=config_with(strategies={"paper": ["nope"]}))


def test_live_mode_gives_the_live_exchange_resource_and_its_venue():
    from resources import LiveExchangeResource, SimulatedExchangeResource, make_exchange

    sim = make_exchange(load_config())
    live = make_exchange(parse_config(_with(lambda d: d["exchange"].update(mode="live", id="kraken"))))
    assert isinstance(sim, SimulatedExchangeResource) and sim.venue == "sim"
    assert isinstance(live, LiveExchangeResource) and live.venue == "kraken" and live.exchange_id == "kraken"


def test_optimization_shards_and_optuna_storage_default_to_one_process_and_the_data_dirs_sqlite():
    o = load_config().optimization
    assert (o.shards, o.search, o.optuna_storage) == (1, "auto", None)
    c = parse_config(_with(lambda d: d["optimization"].update(shards=4, search="bayes", optuna_storage="${QD_OPTUNA_URL}")))
    assert (c.optimization.shards, c.optimization.search, c.optimization.optuna_storage) == (4, "bayes", "${QD_OPTUNA_URL}")
    with pytest.raises(ConfigurationError, match=r"optimization\.shards: .*greater than or equal to 1.*\(got 0\)"):
        parse_config(_with(lambda d: d["optimization"].__setitem__("shards", 0)))


def test_optuna_storage_with_a_password_in_the_file_is_refused_without_echoing_it():
    with pytest.raises(ConfigurationError, match=r"optimization: optuna_storage: a password never goes in the file") as err:
        parse_config(_with(lambda d: d["optimization"].__setitem__("optuna_storage", "postgresql://optuna:canary-7f2e@db/optuna")))
    assert "canary-7f2e" not in str(err.value)
    with pytest.raises(ConfigurationError, match=r"optuna_storage: expected an RDB URL"):
        parse_config(_with(lambda d: d["optimization"].__setitem__("optuna_storage", "optuna.db")))

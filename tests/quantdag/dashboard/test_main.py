"""``python -m quantdag.dashboard``: its context comes from the configuration, its port from the environment."""

from __future__ import annotations

import pytest

from quantdag.config import load_config
from quantdag.dashboard.__main__ import context_from, port_from_env
from quantdag.dashboard.auth import Credentials
from quantdag.errors import ConfigurationError

from .conftest import PASSWORD


def test_context_follows_the_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANTDAG_DATA_DIR", str(tmp_path))
    config = load_config()
    ctx = context_from(config, Credentials.from_env({"QUANTDAG_DASHBOARD_PASSWORD": PASSWORD}))
    assert ctx.warehouse == tmp_path / "quantdag.duckdb"
    assert ctx.dagster_url == config.dashboard.dagster_url and ctx.lock_timeout == config.dashboard.lock_timeout
    assert ctx.paper_strategies == config.strategies.paper and set(config.strategies.paper) <= set(ctx.paper_choices)
    assert {m.symbol for m in ctx.markets} == {m.symbol for m in config.markets}
    assert ctx.min_trades == config.leaderboard.min_trades


def test_port_defaults_to_8050_and_rejects_nonsense(monkeypatch):
    monkeypatch.delenv("QUANTDAG_DASHBOARD_PORT", raising=False)
    assert port_from_env() == 8050
    monkeypatch.setenv("QUANTDAG_DASHBOARD_PORT", "8123")
    assert port_from_env() == 8123
    for bad in ("http", "0", "70000"):
        monkeypatch.setenv("QUANTDAG_DASHBOARD_PORT", bad)
        with pytest.raises(ConfigurationError, match=f"QUANTDAG_DASHBOARD_PORT.*{bad}"):
            port_from_env()

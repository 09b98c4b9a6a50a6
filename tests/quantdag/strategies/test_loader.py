"""User strategies register from folder files and installed entry points, with errors naming the source."""

from __future__ import annotations

import pytest

from quantdag.errors import ConfigurationError
from quantdag.strategies import get_strategy, list_strategies, unregister
from quantdag.strategies.loader import load_entry_points, load_strategy_paths

STRATEGY = '''
import polars as pl
from quantdag.strategies import Strategy

class {cls}(Strategy):
    name = "{name}"

    def compute_indicators(self, candles):
        return candles

    def compute_signals(self, frame):
        return frame.with_columns(entry=pl.lit(False), exit=pl.lit(False))
'''


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names
    for n in names:
        unregister(n)


def test_load_strategy_paths_registers_every_strategy_class_and_skips_helpers_and_tests(tmp_path, cleanup):
    (tmp_path / "mine.py").write_text(STRATEGY.format(cls="Mine", name="ldr_mine"))
    (tmp_path / "_helpers.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "test_mine.py").write_text("raise RuntimeError('never imported')\n")
    cleanup.append("ldr_mine")
    assert load_strategy_paths([tmp_path]) == ["ldr_mine"]
    assert get_strategy("ldr_mine").__name__ == "Mine"
    assert load_strategy_paths([tmp_path]) == ["ldr_mine"]  # loading twice (a second build_defs) is harmless


def test_load_strategy_paths_missing_folder_or_taken_name_raise_naming_them(tmp_path, cleanup):
    with pytest.raises(ConfigurationError, match=r"nowhere is not a folder"):
        load_strategy_paths([tmp_path / "nowhere"])
    (tmp_path / "clash.py").write_text(STRATEGY.format(cls="Clash", name="sma_cross"))
    with pytest.raises(ConfigurationError, match=r"clash\.py.*'sma_cross' is already registered"):
        load_strategy_paths([tmp_path])


def test_load_entry_points_registers_a_strategy_an_installed_package_declares(tmp_path, monkeypatch, cleanup):
    pkg = tmp_path / "ep_strats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(STRATEGY.format(cls="FromPackage", name="ldr_from_pkg"))
    dist = tmp_path / "ep_strats-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-strats\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[quantdag.strategies]\nfrom_pkg = ep_strats:FromPackage\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cleanup.append("ldr_from_pkg")
    assert "ldr_from_pkg" in load_entry_points()
    assert "ldr_from_pkg" in list_strategies()

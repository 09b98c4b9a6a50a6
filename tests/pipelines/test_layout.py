"""The layering the README promises: an asset calls its own stage; the engine never imports Dagster."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("market_data", "indicators", "events", "signals", "backtests", "optimization", "paper", "sentiment")
#: Shared vocabulary any asset may use besides its own stage.
SHARED = ("quantdag.config", "quantdag.markets", "quantdag.strategies")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("stage", STAGES)
def test_asset_module_imports_its_own_stage_and_nothing_else_of_ours(stage):
    ours = {m for m in _imports(ROOT / "assets" / f"{stage}.py") if m == "quantdag" or m.startswith("quantdag.")}
    assert f"quantdag.stages.{stage}" in ours
    assert ours - {f"quantdag.stages.{stage}", *SHARED} == set()


def test_engine_package_never_imports_dagster():
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "quantdag").rglob("*.py")
        if any(m == "dagster" or m.startswith("dagster.") for m in _imports(p))
    ]
    assert offenders == []

"""One `quantdag demo` per test session (the session fixture ``demo_run``), and the console script itself.

The demo (`make demo`: every job over the configuration's days) is the costliest thing a test runs,
about a minute. The tests that need it read different things from the same run, so it runs once:
``tests/quantdag/cli/test_env.py`` (the console script's demo, then `quantdag ui` over its instance)
and ``tests/pipelines/test_user_strategies.py`` (a folder strategy backtested, a peeking one blocked).
The root conftest registers the fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: the folder strategies of tests/pipelines/test_user_strategies.py (a breakout and one that peeks ahead)
USER_STRATEGIES = ROOT / "tests" / "pipelines" / "user_strategies"


def quantdag_command() -> list[str]:
    """The installed console script beside this interpreter (what `make setup` installs)."""
    script = Path(sys.executable).with_name("quantdag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "quantdag.cli"]


@dataclass(frozen=True)
class DemoRun:
    """What `quantdag demo` left: its data dir, the environment it ran with, and its output."""

    data_dir: Path
    env: dict[str, str]
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, sim) -> DemoRun:
    """`quantdag demo` on a fresh data dir: the shipped configuration (every day from its start_date)
    with the session's simulator and ``USER_STRATEGIES`` as its strategy folder.

    Without ``DAGSTER_HOME`` in the environment, so the demo uses the data dir's own Dagster home,
    as a user's first `quantdag demo` does. The tests check the return code themselves.
    """
    root = tmp_path_factory.mktemp("demo")
    data = yaml.safe_load((ROOT / "quantdag.yaml").read_text())
    data["exchange"]["simulator"]["url"] = sim.url
    data["strategy_paths"] = [str(USER_STRATEGIES)]
    config = root / "quantdag.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(QUANTDAG_CONFIG=str(config), QUANTDAG_DATA_DIR=str(root / "data"), MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    proc = subprocess.run([*quantdag_command(), "demo"], env=env, cwd=root, capture_output=True, text=True, timeout=900)
    return DemoRun(root / "data", env, proc)

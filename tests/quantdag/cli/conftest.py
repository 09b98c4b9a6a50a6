"""Running the ``quantdag`` console script in a subprocess on a fresh data dir.

Each test gets its own data dir (``QUANTDAG_DATA_DIR``) and a copy of the shipped configuration
pointed at the session's simulator (``exchange.simulator.url``) with a strategy folder of its own,
so nothing touches the repository's data dir and no subprocess starts a simulator of its own.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from demo_run import quantdag_command

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Cli:
    """The command with a test's environment."""

    env: dict[str, str]
    data_dir: Path
    config: Path
    strategy_dir: Path

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*quantdag_command(), *args], capture_output=True, text=True, env=self.env,
                              cwd=self.data_dir.parent, timeout=timeout, check=False)  # fmt: skip


@pytest.fixture
def cli(tmp_path: Path, sim) -> Cli:
    data = yaml.safe_load((ROOT / "quantdag.yaml").read_text())
    data["exchange"]["simulator"]["url"] = sim.url
    data["strategy_paths"] = ["strategies"]
    config = tmp_path / "quantdag.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "QUANTDAG_CONFIG": str(config), "QUANTDAG_DATA_DIR": str(tmp_path / "data"),
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # fmt: skip
    (tmp_path / "strategies").mkdir()
    return Cli(env, tmp_path / "data", config, tmp_path / "strategies")

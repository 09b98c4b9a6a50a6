"""The one place that decides file locations: everything lives under the project's ``data/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resources.exchange import ExchangeResource
from resources.mlflow import MlflowResource
from resources.warehouse import WarehouseResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


def make_resources(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    *,
    offline: bool = True,
    sim_url: str | None = None,
    exchange_id: str = "binance",
) -> dict[str, Any]:
    """Resources for one deployment: ``data_dir/quantdag.duckdb``, ``data_dir/mlflow.db``, an exchange."""
    d = Path(data_dir).resolve()
    return {
        "warehouse": WarehouseResource(path=str(d / "quantdag.duckdb")),
        "exchange": ExchangeResource(exchange_id=exchange_id, offline=offline, sim_url=sim_url),
        "mlflow": MlflowResource.at(d),
    }

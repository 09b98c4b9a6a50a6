"""Resources of one deployment, chosen by the configuration file, never by a code edit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantdag.config import ProjectConfig
from resources.exchange import ExchangeResource, LiveExchangeResource, SimulatedExchangeResource
from resources.mlflow import MlflowResource
from resources.news import LiveNewsResource, NewsResource, SimulatedNewsResource
from resources.warehouse import WarehouseResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def make_exchange(config: ProjectConfig, *, sim_url: str | None = None) -> ExchangeResource:
    """The exchange implementation ``config.exchange.mode`` names (``sim_url`` overrides the simulator's)."""
    ex = config.exchange
    common = {"exchange_id": ex.id, "timeout_ms": ex.timeout_ms, "max_retries": ex.max_retries, "max_ban_wait": ex.max_ban_wait}
    if ex.mode == "live":
        return LiveExchangeResource(sandbox=ex.sandbox, **common)
    return SimulatedExchangeResource(sim_url=sim_url or ex.simulator.url, sim_seed=ex.simulator.seed,
                                     sim_balances={config.paper.quote: config.paper.capital}, **common)


def make_news(config: ProjectConfig, *, sim_url: str | None = None) -> NewsResource:
    """The news implementation ``config.sentiment.source`` names (offline: the exchange's simulator)."""
    s = config.sentiment
    common = {"timeout_s": s.timeout_s, "retries": s.retries}
    if s.source == "live":
        return LiveNewsResource(feeds=[{"name": f.name, "url": f.url} for f in s.feeds], fear_greed_url=s.fear_greed_url, **common)
    return SimulatedNewsResource(sim_url=sim_url or config.exchange.simulator.url, sim_seed=config.exchange.simulator.seed, **common)


def _parquet_dir(config: ProjectConfig, data_dir: str | Path | None) -> str | None:
    """The Parquet folder of ``config`` (under ``data_dir`` when it is given and the file names none)."""
    if config.parquet_path is None:
        return None
    if data_dir is not None and config.warehouse.parquet_dir is None:
        return str(Path(data_dir).resolve() / "parquet")
    return str(config.parquet_path)


def make_resources(config: ProjectConfig, data_dir: str | Path | None = None, *, sim_url: str | None = None) -> dict[str, Any]:
    """``warehouse`` (``<data>/quantdag.duckdb``), ``mlflow`` (``<data>/mlflow.db``), ``exchange`` and ``news``."""
    d = Path(data_dir).resolve() if data_dir is not None else config.data_path
    return {
        "warehouse": WarehouseResource(path=str(d / "quantdag.duckdb"), parquet_dir=_parquet_dir(config, data_dir)),
        "exchange": make_exchange(config, sim_url=sim_url),
        "mlflow": MlflowResource.at(d),
        "news": make_news(config, sim_url=sim_url),
    }

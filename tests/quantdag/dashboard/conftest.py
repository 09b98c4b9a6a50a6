"""Fixtures of the dashboard's tests: a seeded warehouse (seed.py) and an app over it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quantdag.config import load_config
from quantdag.dashboard.app import DashboardContext, create_app
from quantdag.dashboard.auth import Credentials

from .seed import seed

PASSWORD = "correct horse battery staple"


def closed_port_url() -> str:
    """An http URL nothing listens on (a port bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_ctx(path: Path, **kw) -> DashboardContext:
    cfg = load_config()
    base = dict(warehouse=path, credentials=Credentials.from_env({"QUANTDAG_DASHBOARD_PASSWORD": PASSWORD}),
                secret="test-secret", markets=list(cfg.markets), stream_symbols=["BTC/USDT"],
                paper_strategies=["sma_cross"], paper_choices=["regime_ma", "sma_cross"], dagster_url=closed_port_url(),
                mlflow_url="http://127.0.0.1:5000")  # fmt: skip
    return DashboardContext(**{**base, **kw})


def login(client: TestClient) -> TestClient:
    r = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded warehouse, read-only for the tests sharing it (copy it to write)."""
    path = tmp_path_factory.mktemp("dash") / "qd.duckdb"
    seed(path)
    return path


@pytest.fixture
def writable_db(seeded_db: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded warehouse, for tests that write."""
    path = tmp_path / "qd.duckdb"
    shutil.copy(seeded_db, path)
    return path


@pytest.fixture
def client(seeded_db: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_ctx(seeded_db))) as c:
        yield login(c)

"""Shared fixtures: the real candles in ../shared/data (read in place, never copied), the simulator,
a real PostgreSQL server (tests/postgres_server.py) and one `quantdag demo` run (tests/demo_run.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from demo_run import demo_run  # noqa: F401  (the session fixture: one `quantdag demo` the tests share)
from postgres_server import postgres  # noqa: F401  (the session fixture: a real PostgreSQL server)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()


def require_shared(path: Path = SHARED_DATA) -> Path:
    """``path`` under the real-data folder, or a failure that says what is missing and where it belongs.

    The real candles are never copied into the repository: they sit beside the checkout, in
    ``../shared/data/<exchange>/<MARKET>-<timeframe>.parquet`` (see its README).
    """
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"this test reads real exchange candles from {SHARED_DATA}, which is missing: check out the "
            "project's shared data beside the repository (../shared/data/<exchange>/<MARKET>-<tf>.parquet)",
            pytrace=False,
        )
    if not path.exists():
        have = sorted(str(p.relative_to(SHARED_DATA)) for p in SHARED_DATA.glob("*/*.parquet"))
        pytest.fail(f"real-data file {path} is missing; {SHARED_DATA} has: {', '.join(have) or 'nothing'}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of real exchange candles; CI checks it out beside the project."""
    return require_shared()


def load_real_candles(exchange: str, market: str, timeframe: str) -> pl.DataFrame:
    """Candle frame (ts as UTC datetime[ms], OHLCV float64) of one shared parquet file.

    ``market`` is spelled as in the file name, e.g. ``"BTC_USDT"``.
    """
    path = require_shared(SHARED_DATA / exchange / f"{market}-{timeframe}.parquet")
    df = pl.read_parquet(path)
    ts = df["ts"]
    if ts.dtype.is_integer():
        ts = pl.from_epoch(ts, time_unit="ms")
    return df.with_columns(ts.dt.cast_time_unit("ms").dt.replace_time_zone("UTC").alias("ts")).select(
        "ts", *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume"))
    )


@pytest.fixture(scope="session")
def sim() -> Iterator[object]:
    """A seeded simulated exchange on a free 127.0.0.1 port, same genesis as the pipeline's.

    Session-scoped: generating its history is the expensive part. Tests that inject faults
    must clear them (``sim.faults = None``) when done.
    """
    from quantdag.sim import MarketModel, SimExchange
    from resources.exchange import SIM_GENESIS_MS

    with SimExchange(MarketModel(seed=7, genesis_ms=SIM_GENESIS_MS)) as s:
        yield s


@pytest.fixture
def defs(tmp_path, sim):
    """The project's Definitions over a temporary data dir and the test's simulator."""
    from pipelines.definitions import build_defs

    return build_defs(tmp_path, sim_url=sim.url)


@pytest.fixture(autouse=True)
def no_leaked_defs_state_storage(request: pytest.FixtureRequest):
    """Fail the Dagster test that leaves a Dagster instance's defs-state storage installed.

    Entering a ``DagsterInstance`` installs its storage in a ContextVar; an evaluation context
    that is never closed (``build_schedule_context`` without ``with``) resets it later to a
    disposed instance, and some unrelated later test then fails with "Attempted to resolve
    undefined DagsterInstance weakref". Only the Dagster tests (``tests/pipelines``,
    ``tests/assets``) are watched, so engine tests never import Dagster. The storage lives in a
    private Dagster module: adjust the import on a Dagster upgrade.
    """
    if request.node.path.parent.name not in ("pipelines", "assets"):
        yield
        return
    from dagster._core.storage.defs_state.base import DefsStateStorage

    before = DefsStateStorage.get()
    yield
    after = DefsStateStorage.get()
    assert after is before, (
        f"this test left Dagster's defs-state storage changed ({before!r} -> {after!r}): close every "
        "build_schedule_context/build_sensor_context with `with` inside its instance_for_test block"
    )

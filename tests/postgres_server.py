"""A real PostgreSQL server (Debian's binaries) for PostgreSQL-backed instances: the session fixture ``postgres``.

A module, not tests/pipelines/conftest.py: a second ``conftest`` module shadows the root one that tests
import helpers from (``from conftest import load_real_candles``). The root conftest registers the fixture.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "postgres.sh"
#: Set (by .ci/run) where the server must run: missing binaries fail instead of skipping.
REQUIRE_ENV = "QUANTDAG_REQUIRE_POSTGRES"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    """A running server (``scripts/postgres.sh``): role ``user`` with ``password`` owns database ``db``."""

    dir: Path
    port: int
    user: str
    password: str
    db: str
    host: str = "127.0.0.1"

    def create_database(self, name: str) -> str:
        """A new empty database ``name`` owned by the role (the superuser connects through the socket)."""
        import psycopg2

        con = psycopg2.connect(host=str(self.dir / "run"), port=self.port, user="postgres", dbname="postgres")
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        finally:
            con.close()
        return name

    def instance_section(self, db: str | None = None) -> dict:
        """The configuration's ``instance`` section for database ``db`` (default: the role's own)."""
        return {"storage": "postgres", "postgres": {"host": self.host, "port": self.port, "db": db or self.db, "user": self.user}}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a free 127.0.0.1 port for the session, stopped and removed at the end.

    Skipped only when Debian's binaries are absent (``apt-get install postgresql``) and
    ``$QUANTDAG_REQUIRE_POSTGRES`` is unset; CI sets it, so there the tests run or fail.
    """
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not os.environ.get("PG_BIN"):
        why = "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin): apt-get install postgresql"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{why} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(why)
    # as root the server runs as the postgres user, who must reach the folder: /tmp, not pytest's 0700 tmp dirs
    directory = Path(tempfile.mkdtemp(prefix="quantdag-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    server = PostgresServer(dir=directory, port=_free_port(), user="dagster", password=secrets.token_urlsafe(16), db="dagster")
    env = {**os.environ, "QUANTDAG_PG_PASSWORD": server.password,
           "QUANTDAG_PG_SERVER_OPTIONS": "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"}
    started = subprocess.run(["bash", str(SCRIPT), "start", str(directory), str(server.port), server.db, server.user],
                             env=env, capture_output=True, text=True, timeout=120)
    try:
        assert started.returncode == 0, f"scripts/postgres.sh start failed:\n{started.stdout}\n{started.stderr}"
        yield server
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)

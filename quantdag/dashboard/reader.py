"""Reading the warehouse from a web server without ever erroring or blocking a writer.

DuckDB lets one process hold the file while it writes. A page opens the file read-only for the
few milliseconds its queries take (``lock_timeout`` small); when a Dagster job or the streamer
holds it, the page is served from the last result read for it, marked with the time it was read
("as of HH:MM:SS"). A missing file or table reads as empty: every page has an empty state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from quantdag.errors import ConfigurationError
from quantdag.store import Warehouse, WarehouseError, WarehouseLocked

log = logging.getLogger(__name__)

#: the pause after each read before the next opens the file: however many pages are asked for, the
#: dashboard holds the file a small share of the time, so a writer's lock retries (quantdag.store) get in
READ_PAUSE_S = 0.15


class Db:
    """One read-only session's queries; a table that does not exist (yet) reads as no rows."""

    def __init__(self, wh: Warehouse | None) -> None:
        self.wh = wh
        self._tables: set[str] | None = None

    @property
    def tables(self) -> set[str]:
        if self._tables is None:
            if self.wh is None:
                self._tables = set()
            else:
                q = "SELECT schema_name || '.' || table_name AS t FROM duckdb_tables() " \
                    "UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal"
                self._tables = set(self.wh.query(q)["t"].to_list())
        return self._tables

    def has(self, *tables: str) -> bool:
        return all(t in self.tables for t in tables)

    def rows(self, sql: str, params: list[Any] | None = None, *, needs: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The query's rows as dicts, or [] when a table it ``needs`` is missing."""
        if self.wh is None or not self.has(*needs):
            return []
        try:
            return self.wh.query(sql, params).to_dicts()
        except duckdb.CatalogException:  # a column an older warehouse lacks: empty, not a 500
            log.info("dashboard query skipped (missing table or column): %s", sql.split("\n")[0][:80])
            return []

    def one(self, sql: str, params: list[Any] | None = None, *, needs: tuple[str, ...] = ()) -> dict[str, Any] | None:
        r = self.rows(sql, params, needs=needs)
        return r[0] if r else None


class FileGate:
    """Readers together or one writer, inside this process.

    DuckDB refuses, within one process, a read-write connection to a file that has read-only ones
    open (and the reverse), so the dashboard's own writes (the controls) wait for its reads to
    finish and its reads wait for its writes; a reader that cannot get in within its timeout serves
    its cached copy, as when another process writes.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self, timeout: float) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writing, timeout):
                raise WarehouseLocked("the dashboard itself is writing the warehouse")
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self, timeout: float) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writing and self._readers == 0, timeout):
                raise WarehouseLocked("the dashboard's own reads kept the warehouse busy")
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass(frozen=True)
class Snapshot:
    """A page's data and when it was read; ``stale`` when the file was busy and this is the cached copy."""

    data: dict[str, Any]
    read_at: datetime
    stale: bool


class Reader:
    """Per-request read-only sessions with a last-good cache per page key."""

    def __init__(self, path: str | Path, *, lock_timeout: float = 0.25, parquet_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.parquet_dir = parquet_dir
        self._cache: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        #: shared with the controls, the process's writer (see FileGate)
        self.gate = FileGate()
        self._paced = threading.Lock()
        self._next_open = 0.0

    @contextmanager
    def session(self) -> Iterator[Db]:
        """A :class:`Db` over one short read-only connection (no connection when the file is missing).

        Raises
        ------
        WarehouseError
            When the file stayed locked for ``lock_timeout`` (or cannot be read).
        """
        if not self.path.exists():
            yield Db(None)
            return
        wh = Warehouse(self.path, read_only=True, lock_timeout=self.lock_timeout, parquet_dir=self.parquet_dir)
        with self._paced:  # one read at a time, then a pause: the file is free most of the time for a writer's retry
            wait = self._next_open - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                with self.gate.read(self.lock_timeout), wh.session():
                    yield Db(wh)
            finally:
                self._next_open = time.monotonic() + READ_PAUSE_S

    def snapshot(self, key: str, build: Callable[[Db], dict[str, Any]]) -> Snapshot:
        """``build``'s data read now, or, while a writer holds the file, the last copy read for ``key``
        (on a first visit during a write: ``build`` over an empty warehouse)."""
        try:
            with self.session() as db:
                data = build(db)
        except (WarehouseError, ConfigurationError) as exc:
            log.info("warehouse busy (%s); serving the cached %s", type(exc).__name__, key)
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None:
                return Snapshot(cached.data, cached.read_at, stale=True)
            return Snapshot(build(Db(None)), datetime.now(timezone.utc), stale=True)
        snap = Snapshot(data, datetime.now(timezone.utc), stale=False)
        with self._lock:
            self._cache[key] = snap
        return snap

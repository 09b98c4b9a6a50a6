"""Reading the warehouse from a web server without ever erroring or blocking a writer.

DuckDB lets one process hold the file while it writes. A page opens the file read-only for the
few milliseconds its queries take (``lock_timeout`` small); when a Dagster job or the streamer
holds it, the page is served from the last result read for it, marked with the time it was read
("as of HH:MM:SS"). A missing file or table reads as empty: every page has an empty state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from quantdag.errors import ConfigurationError
from quantdag.store import Warehouse, WarehouseError

log = logging.getLogger(__name__)


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
        with wh.session():
            yield Db(wh)

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

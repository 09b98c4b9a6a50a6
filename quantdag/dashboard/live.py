"""Server push: one poller per server watches the warehouse and tells every open page when a new
candle, fill or alert is stored (server-sent events; the page then re-reads itself).

Cheap by design: the poller looks at the file's and its WAL's size and mtime every
``poll_interval`` and opens the file (read-only, for three ``max(ts)`` reads) only when they
changed, so an idle dashboard never holds the lock a writer may want.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from quantdag.dashboard.queries import live_marks
from quantdag.dashboard.reader import Reader
from quantdag.errors import ConfigurationError
from quantdag.store import WarehouseError

log = logging.getLogger(__name__)


def _signature(path: Path) -> tuple:
    out = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class LiveFeed:
    """Broadcasts ``{"candle": iso, "fill": iso, "alert": iso, "changed": [...]}`` on every change."""

    def __init__(self, reader: Reader, poll_interval: float = 0.5) -> None:
        self.reader = reader
        self.poll_interval = poll_interval
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task | None = None
        self.marks: dict[str, str | None] | None = None
        self._sig: tuple | None = None

    def _read(self) -> dict[str, str | None] | None:
        try:
            with self.reader.session() as db:
                return live_marks(db)
        except (WarehouseError, ConfigurationError):
            return None  # a writer holds the file: look again next tick (the signature is kept unseen)

    async def poll_once(self) -> dict | None:
        """Read the marks if the file changed; the event to send when a mark moved."""
        sig = _signature(self.reader.path)
        if sig == self._sig:
            return None
        marks = await asyncio.to_thread(self._read)
        if marks is None:
            return None
        self._sig = sig
        before, self.marks = self.marks, marks
        if before is None:
            return None
        changed = [k for k in marks if marks[k] != before.get(k)]
        return {**marks, "changed": changed} if changed else None

    async def _run(self) -> None:
        while True:
            try:
                event = await self.poll_once()
                if event is not None:
                    data = json.dumps(event)
                    for q in list(self._subscribers):
                        q.put_nowait(data)
            except Exception:  # the feed must outlive one bad read; the next tick tries again
                log.exception("live feed poll failed")
            await asyncio.sleep(self.poll_interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def stream(self, heartbeat: float = 15.0) -> AsyncIterator[str]:
        """One client's SSE lines: ``event: update`` per change, a comment line as keep-alive."""
        q: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers.add(q)
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(q.get(), timeout=heartbeat)
                    yield f"event: update\ndata: {data}\n\n"
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            self._subscribers.discard(q)

"""The dashboard keeps serving while another process writes, and never holds up that writer."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from fastapi.testclient import TestClient

from quantdag.dashboard.app import create_app

from .conftest import login, make_ctx

WRITER = r"""
import sys, time
from datetime import datetime, timezone
from quantdag.store import Warehouse
t = time.monotonic()
con = Warehouse(sys.argv[1], lock_timeout=10).open()   # retries while a reader holds the file
opened = time.monotonic() - t
con.execute("BEGIN")
con.execute("INSERT INTO paper.fills VALUES ('t-new', NULL, NULL, 'BTC/USDT', 'sell', 0.5, 222.25, 0.1, 'USDT', "
            "'paper:sma_cross-abc123', ?)", [datetime(2026, 11, 2, tzinfo=timezone.utc)])
print(f"holding {opened:.3f}", flush=True)
sys.stdin.readline()
t = time.monotonic()
con.execute("COMMIT")
con.close()
print(f"committed {time.monotonic() - t:.3f}", flush=True)
"""


def test_pages_serve_the_cached_copy_while_a_writer_holds_the_file(writable_db):
    with TestClient(create_app(make_ctx(writable_db, lock_timeout=0.2))) as c:
        login(c)
        first = c.get("/")
        assert first.status_code == 200 and "writer busy" not in first.text and "222.25" not in first.text

        stop = threading.Event()
        served: list[int] = []

        def hammer() -> None:  # readers opening the file while the writer starts: the writer must get in
            while not stop.is_set():
                served.append(c.get("/").status_code)

        t = threading.Thread(target=hammer)
        t.start()
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(writable_db)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            line = writer.stdout.readline().split()
            stop.set()
            t.join()
            assert line[0] == "holding", line
            assert float(line[1]) < 6.0  # the writer got in despite the readers: within a few of its <= 2 s back-offs, not starved
            assert served and set(served) == {200}

            # while the write transaction is open: 200, the cached data, the "as of" badge, quickly
            t0 = time.monotonic()
            busy = c.get("/")
            assert time.monotonic() - t0 < 1.5
            assert busy.status_code == 200 and "writer busy: as of" in busy.text
            assert "paper:sma_cross-abc123" in busy.text and "222.25" not in busy.text
            # a page never read before shows its empty state, not an error
            fresh_page = c.get("/sweeps")
            assert fresh_page.status_code == 200 and "writer busy" in fresh_page.text

            out, _ = writer.communicate("\n", timeout=30)
        finally:
            writer.kill()
        assert out.startswith("committed") and float(out.split()[1]) < 1.0
        after = c.get("/")
        assert "writer busy" not in after.text and "222.25" in after.text

"""Controls: halt/resume through risk_store and paper switches, each logged and CSRF-protected."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from quantdag.dashboard.app import create_app
from quantdag.stages.paper import paper_overrides, paper_strategies
from quantdag.store import Warehouse

from .conftest import login, make_ctx
from .seed import ACCOUNT


def _csrf(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)


def test_halt_and_resume_need_the_csrf_token_and_are_logged(writable_db):
    with TestClient(create_app(make_ctx(writable_db))) as c:
        login(c)
        for data in ({}, {"csrf_token": "forged"}):
            r = c.post("/controls/risk", data={"account": ACCOUNT, "action": "halt", **data}, follow_redirects=False)
            assert r.status_code == 403
        wh = Warehouse(writable_db, read_only=True)
        assert wh.query("SELECT state FROM risk.state WHERE account = ?", [ACCOUNT])["state"][0] == "active"
        del wh

        token = _csrf(c)
        r = c.post("/controls/risk", data={"account": ACCOUNT, "action": "halt", "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303
        page = c.get("/").text
        assert f"{ACCOUNT}: halt stored" in page and "halt from the dashboard by admin" in page
        r = c.post("/controls/risk", data={"account": ACCOUNT, "action": "resume"}, headers={"X-CSRF-Token": token},
                   follow_redirects=False)  # fmt: skip
        assert r.status_code == 303
        r = c.post("/controls/risk", data={"account": "paper:never-marked", "action": "halt", "csrf_token": token})
        assert "halt paper:never-marked: not done" in r.text and "never marked" in r.text
    wh = Warehouse(writable_db, read_only=True)
    events = wh.query("SELECT state, rule, reason FROM risk.events WHERE account = ? ORDER BY ts", [ACCOUNT]).rows()
    assert events[-2:] == [("halted", "manual", "halt from the dashboard by admin"),
                           ("active", "manual", "resume from the dashboard by admin")]  # fmt: skip
    assert wh.query("SELECT state FROM risk.state WHERE account = ?", [ACCOUNT])["state"][0] == "active"


def test_paper_switch_overrides_the_configuration_and_is_audited(writable_db):
    with TestClient(create_app(make_ctx(writable_db))) as c:
        login(c)
        assert c.post("/controls/paper", data={"strategy": "sma_cross", "enabled": "0"}).status_code == 403
        token = _csrf(c)
        c.post("/controls/paper", data={"strategy": "sma_cross", "enabled": "0", "csrf_token": token})
        c.post("/controls/paper", data={"strategy": "regime_ma", "enabled": "1", "csrf_token": token})
        r = c.post("/controls/paper", data={"strategy": "nope", "enabled": "1", "csrf_token": token})
        assert "unknown strategy" in r.text
    wh = Warehouse(writable_db, read_only=True)
    assert wh.query("SELECT strategy, enabled, changed_by FROM paper.switches ORDER BY ts").rows() == [
        ("sma_cross", False, "admin"), ("regime_ma", True, "admin")]
    assert paper_strategies(["sma_cross", "consensus"], paper_overrides(wh)) == {"regime_ma", "consensus"}


def test_a_control_waits_for_the_servers_own_reads_and_pages_never_fail_during_it(writable_db):
    """DuckDB refuses a read-write connection beside read-only ones in one process: the control waits
    for the page reads in flight, and a page read during the control's write serves its cached copy."""
    import threading
    import time

    app = create_app(make_ctx(writable_db))
    reader = app.state.reader
    with TestClient(app) as c:
        login(c)
        token = _csrf(c)
        held = threading.Event()

        def long_read() -> None:
            with reader.session():
                held.set()
                time.sleep(0.6)

        t = threading.Thread(target=long_read)
        t.start()
        held.wait()
        t0 = time.monotonic()
        r = c.post("/controls/risk", data={"account": ACCOUNT, "action": "halt", "csrf_token": token})
        assert time.monotonic() - t0 > 0.3 and f"{ACCOUNT}: halt stored" in r.text  # waited, then wrote
        t.join()

        def long_write() -> None:
            with reader.gate.write(5):
                held.set()
                time.sleep(0.8)

        held.clear()
        t = threading.Thread(target=long_write)
        t.start()
        held.wait()
        busy = c.get("/")
        assert busy.status_code == 200 and "writer busy: as of" in busy.text and "halt from the dashboard" in busy.text
        t.join()

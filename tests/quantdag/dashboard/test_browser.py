"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against the server as
``make dashboard`` runs it (a subprocess over a seeded data dir, and one over an empty one).

Screenshots of every page at 360 px wide are kept under the test's tmp dir (printed on failure).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from quantdag.config import DEFAULT_CONFIG_PATH
from quantdag.store import Warehouse

from .conftest import PASSWORD, closed_port_url
from .seed import ACCOUNT, PARAM_SET, T0, fill_row, seed

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
PAGES = {"/": "Paper accounts", "/strategies": "Leaderboard", f"/strategies/{PARAM_SET}": PARAM_SET,
         "/sweeps": "Parameter sweeps", "/portfolio": "Portfolio", "/market": "Freshness", "/pipeline": "Pipeline"}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = data_dir / "quantdag.duckdb"
        cfg = data_dir / "quantdag.yaml"
        cfg.write_text(DEFAULT_CONFIG_PATH.read_text()
                       + f"\ndashboard: {{dagster_url: '{closed_port_url()}', poll_interval: 0.25}}\n")  # fmt: skip
        env = {**os.environ, "QUANTDAG_CONFIG": str(cfg), "QUANTDAG_DATA_DIR": str(data_dir),
               "QUANTDAG_DASHBOARD_PASSWORD": PASSWORD, "QUANTDAG_DASHBOARD_PORT": str(self.port)}  # fmt: skip
        env.pop("QUANTDAG_DASHBOARD_USER", None)
        self.log = open(data_dir / "server.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "quantdag.dashboard"], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 60.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dashboard exited: {Path(self.log.name).read_text()}")
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"dashboard not up in {timeout}s: {Path(self.log.name).read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    full, empty = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("empty")
    seed(full / "quantdag.duckdb")
    both = {"full": Server(full), "empty": Server(empty)}  # started together: their imports overlap
    try:
        yield {k: s.wait() for k, s in both.items()}
    finally:
        for s in both.values():
            s.stop()


@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    yield b
    b.close()


def _phone(browser, server: Server):
    """A logged-in 360 px wide page (a small Android phone)."""
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                              has_touch=True, base_url=server.url)  # fmt: skip
    page = ctx.new_page()
    page.goto("/")
    assert page.url.endswith("/login?next=%2F")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    return page


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} is {width}px wide at a 360px viewport"


def test_login_form_rejects_a_wrong_password_then_logs_in(servers, browser):
    ctx = browser.new_context(base_url=servers["full"].url)
    page = ctx.new_page()
    page.goto("/market")
    assert "/login?next=%2Fmarket" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not it")
    page.click("button[type=submit]")
    assert "wrong user name or password" in page.content()
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(servers["full"].url + "/market")
    assert page.locator("h1").first.inner_text() == "Freshness"
    ctx.close()


@pytest.mark.parametrize("kind", ["full", "empty"])
def test_every_page_renders_and_fits_360px(servers, browser, tmp_path, kind):
    page = _phone(browser, servers[kind])
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for path, heading in PAGES.items():
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert heading in page.locator("main").inner_text(), path
        _fits(page)
        page.screenshot(path=str(tmp_path / f"{kind}{path.replace('/', '_') or '_'}.png"), full_page=True)
    if kind == "full":
        page.goto(f"/strategies/{PARAM_SET}")
        assert page.locator(".chart canvas").count() >= 3  # candles with trades, equity, drawdown drawn
        page.goto("/")
        assert page.locator(".chart canvas").count() >= 1
    else:
        page.goto("/")
        assert "No paper account has traded yet" in page.content()
    assert not errors, errors
    assert len(list(tmp_path.glob("*.png"))) == len(PAGES)
    page.context.close()


def test_a_new_fill_appears_without_a_reload(servers, browser):
    server = servers["full"]
    page = _phone(browser, server)
    page.wait_for_function("document.body.dataset.live === 'connected'", timeout=5000)
    marker = page.evaluate("window.__marker = 1")  # survives only if the page is not reloaded
    with Warehouse(server.db, lock_timeout=10).transaction() as con:
        Warehouse.insert(con, "paper.fills", [{**fill_row(77, T0 + timedelta(days=2)), "price": 333.75}])
    t0 = time.monotonic()
    page.wait_for_function("document.querySelector('#fills').innerText.includes('333.75')", timeout=5000)
    elapsed = time.monotonic() - t0
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert elapsed < 2.0, f"the fill showed {elapsed:.2f}s after its commit"
    del marker
    page.context.close()


def test_a_new_candle_updates_market_freshness_without_a_reload(servers, browser):
    from .seed import candle_rows

    server = servers["full"]
    page = _phone(browser, server)
    page.goto("/market")
    page.wait_for_function("document.body.dataset.live === 'connected'", timeout=5000)
    sol = page.locator("#freshness tr", has_text="SOL/USDT:1h")
    assert sol.locator("td").nth(1).inner_text() == "–"
    with Warehouse(server.db, lock_timeout=10).transaction() as con:
        Warehouse.insert(con, "market.candles", candle_rows("SOL/USDT", 1, start=T0 + timedelta(days=4)))
    page.wait_for_function("document.querySelector('#main').dataset.updates >= '1'", timeout=5000)
    assert page.locator("#freshness tr", has_text="SOL/USDT:1h").locator("td").nth(1).inner_text() == "2026-11-05 00:00"
    page.context.close()


def test_installs_as_a_progressive_web_app(servers, playwright, tmp_path):
    """Chromium's own installability check (manifest, icons, service worker at scope /) finds nothing
    missing; it needs a profile on disk, as incognito windows never install."""
    ctx = playwright.chromium.launch_persistent_context(tmp_path / "profile", executable_path=CHROMIUM, headless=True,
                                                        args=["--no-sandbox"], base_url=servers["full"].url,
                                                        viewport={"width": 360, "height": 740})  # fmt: skip
    page = ctx.new_page()
    page.goto("/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(servers["full"].url + "/")
    assert page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)") == servers["full"].url + "/"
    cdp = ctx.new_cdp_session(page)
    assert cdp.send("Page.getAppManifest")["errors"] == []
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == [], errors
    ctx.close()


def test_halt_control_works_with_its_token_and_is_refused_without(servers, browser):
    page = _phone(browser, servers["full"])
    no_token = page.request.post("/controls/risk", form={"account": ACCOUNT, "action": "halt"}, max_redirects=0)
    assert no_token.status == 403
    page.goto("/")
    row = page.locator("#risk tr", has_text=ACCOUNT)
    assert row.locator("td").nth(1).inner_text() == "active"
    row.locator("button[value=halt]").click()
    page.wait_for_load_state("networkidle")
    assert f"{ACCOUNT}: halt stored" in page.locator(".flash").inner_text()
    assert page.locator("#risk tr", has_text=ACCOUNT).locator("td").nth(1).inner_text() == "halted"
    page.context.close()

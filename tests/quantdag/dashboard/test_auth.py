"""Security: no password no server, every route needs a session, hashed password, rate-limited
logins, CSRF on state changes, no secret on any page."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from quantdag.dashboard.app import create_app
from quantdag.dashboard.auth import Credentials
from quantdag.errors import ConfigurationError

from .conftest import PASSWORD, login, make_ctx


def test_server_without_password_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != "QUANTDAG_DASHBOARD_PASSWORD"}
    out = subprocess.run([sys.executable, "-m", "quantdag.dashboard"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "QUANTDAG_DASHBOARD_PASSWORD is not set" in out.stderr
    with pytest.raises(ConfigurationError, match="refuses to start"):
        Credentials.from_env({"QUANTDAG_DASHBOARD_PASSWORD": ""})


def test_credentials_keep_only_a_salted_hash():
    c = Credentials.from_env({"QUANTDAG_DASHBOARD_PASSWORD": PASSWORD, "QUANTDAG_DASHBOARD_USER": "ops"})
    assert c.user == "ops" and PASSWORD.encode() not in c.digest and len(c.digest) == 32
    assert c.check("ops", PASSWORD) and not c.check("ops", PASSWORD + "x") and not c.check("admin", PASSWORD)
    assert "digest" not in repr(c) and PASSWORD not in repr(c)
    # a second start salts differently: equal passwords never give equal hashes
    assert Credentials.from_env({"QUANTDAG_DASHBOARD_PASSWORD": PASSWORD}).digest != c.digest


def test_every_route_without_session_redirects_pages_and_refuses_the_rest(seeded_db):
    app = create_app(make_ctx(seeded_db))
    with TestClient(app) as c:
        for route in app.routes:
            if not isinstance(route, APIRoute) or route.path in ("/login", "/healthz"):
                continue
            path = route.path.replace("{param_set}", "sma_cross-abc123")
            for method in route.methods:
                if method == "GET":
                    page = c.get(path, headers={"accept": "text/html"}, follow_redirects=False)
                    if path == "/events":  # the live feed is an API: no redirect to a form
                        assert page.status_code == 401
                    else:
                        assert page.status_code == 303 and page.headers["location"].startswith("/login?next="), path
                    api = c.get(path, headers={"accept": "application/json"}, follow_redirects=False)
                    assert api.status_code == 401, path
                    htmx = c.get(path, headers={"accept": "text/html", "HX-Request": "true"}, follow_redirects=False)
                    assert htmx.status_code == 401, path
                else:
                    r = c.request(method, path, data={"account": "x", "action": "halt"}, follow_redirects=False)
                    assert r.status_code == 401, (method, path)
        assert c.get("/healthz").json()["ok"] is True
        assert c.get("/login").status_code == 200
        assert c.get("/static/app.css").status_code == 200
        assert c.get("/static/sw.js").headers["service-worker-allowed"] == "/"


def test_login_failures_are_rate_limited_per_client(seeded_db):
    with TestClient(create_app(make_ctx(seeded_db, login_attempts=3))) as c:
        for _ in range(3):
            r = c.post("/login", data={"username": "admin", "password": "wrong"}, follow_redirects=False)
            assert r.status_code == 401 and "wrong user name or password" in r.text
        blocked = c.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert c.get("/", headers={"accept": "application/json"}).status_code == 401


def test_login_sets_a_signed_session_and_follows_only_local_next(seeded_db):
    with TestClient(create_app(make_ctx(seeded_db))) as c:
        r = c.post("/login", data={"username": "admin", "password": PASSWORD, "next": "//evil.example/x"},
                   follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = c.cookies.get("quantdag_session")
        assert cookie and PASSWORD not in cookie
        assert "samesite=strict" in r.headers["set-cookie"].lower() and "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/").status_code == 200
    # a cookie signed with another key is no session
    with TestClient(create_app(make_ctx(seeded_db, secret="another"))) as other:
        other.cookies.set("quantdag_session", cookie)
        assert other.get("/", headers={"accept": "application/json"}).status_code == 401


def test_logout_needs_the_csrf_token(client):
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get("/").status_code == 200
    token = _csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/", headers={"accept": "application/json"}).status_code == 401


def test_no_page_renders_the_password_or_the_session_key(seeded_db):
    ctx = make_ctx(seeded_db)
    with TestClient(create_app(ctx)) as c:
        login(c)
        for path in ("/", "/strategies", "/strategies/sma_cross-abc123", "/sweeps", "/portfolio", "/market", "/pipeline"):
            text = c.get(path).text
            assert PASSWORD not in text and ctx.secret not in text and ctx.credentials.digest.hex() not in text


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

"""The dashboard's web app: server-rendered pages over the warehouse, a live feed, two controls.

``create_app`` takes everything it needs (credentials, paths, URLs) so tests build it over a temporary
warehouse; ``python -m quantdag.dashboard`` builds it from the configuration and the environment.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from quantdag.dashboard import controls, pipeline, queries
from quantdag.dashboard.auth import Credentials, LoginLimiter, csrf_ok, new_csrf_token
from quantdag.dashboard.format import install_filters
from quantdag.dashboard.live import LiveFeed
from quantdag.dashboard.reader import Reader
from quantdag.markets import Market

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PUBLIC = ("/login", "/healthz", "/static/")


@dataclass
class DashboardContext:
    """What the app reads and links to (built from the configuration by ``__main__``)."""

    warehouse: Path
    credentials: Credentials
    secret: str
    dagster_url: str = "http://127.0.0.1:3000"
    mlflow_url: str = "http://127.0.0.1:5000"
    lock_timeout: float = 0.25
    poll_interval: float = 0.5
    login_attempts: int = 5
    min_trades: int = 5
    capital: float = 10_000.0
    webhook_env: str = "QUANTDAG_ALERT_WEBHOOK"
    markets: list[Market] = field(default_factory=list)
    stream_symbols: list[str] = field(default_factory=list)
    paper_strategies: list[str] = field(default_factory=list)
    paper_choices: list[str] = field(default_factory=list)
    parquet_dir: Path | None = None
    secure_cookies: bool = False


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "") \
        and "hx-request" not in request.headers and request.url.path != "/events"


def create_app(ctx: DashboardContext) -> FastAPI:
    reader = Reader(ctx.warehouse, lock_timeout=ctx.lock_timeout, parquet_dir=ctx.parquet_dir)
    feed = LiveFeed(reader, ctx.poll_interval)
    limiter = LoginLimiter(ctx.login_attempts)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        feed.start()
        yield
        await feed.stop()

    app = FastAPI(title="quantdag dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    install_filters(templates.env, ctx)
    app.state.reader, app.state.feed, app.state.ctx = reader, feed, ctx

    @app.middleware("http")
    async def require_session(request: Request, call_next):
        """Every route but the public ones needs a session: pages redirect to /login, the rest get 401."""
        path = request.url.path
        if path in ("/login", "/healthz") or path.startswith("/static/") or request.session.get("user"):
            response = await call_next(request)
            if path == "/static/sw.js":
                response.headers["Service-Worker-Allowed"] = "/"
            return response
        if _wants_html(request):
            return RedirectResponse("/login?" + urlencode({"next": path}), status_code=303)
        return JSONResponse({"detail": "not logged in"}, status_code=401)

    # added last, so it runs first: the session is decoded before require_session reads it
    app.add_middleware(SessionMiddleware, secret_key=ctx.secret, session_cookie="quantdag_session", max_age=12 * 3600,
                       same_site="strict", https_only=ctx.secure_cookies)  # fmt: skip
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, template: str, snap: Any = None, status: int = 200, **extra: Any) -> HTMLResponse:
        sess = request.session
        if sess.get("user") and not sess.get("csrf"):
            sess["csrf"] = new_csrf_token()
        body = {"request": request, "user": sess.get("user"), "csrf": sess.get("csrf"), "snap": snap,
                "d": snap.data if snap is not None else {}, "flash": sess.pop("flash", None), "ctx": ctx, **extra}  # fmt: skip
        return templates.TemplateResponse(request, template, body, status_code=status)

    # ---- public ------------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "warehouse": reader.path.exists()}

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "login.html", next=_safe_next(next))

    @app.post("/login")
    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        wait = limiter.blocked(client)
        if wait:
            return PlainTextResponse(f"too many failed logins; try again in {wait:.0f}s", status_code=429,
                                     headers={"Retry-After": str(int(wait) + 1)})  # fmt: skip
        form = await request.form()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "/")))
        if not ctx.credentials.check(user, password):
            limiter.failed(client)
            log.warning("dashboard: failed login for %r from %s", user[:64], client)
            return page(request, "login.html", status=401, next=target, error="wrong user name or password")
        limiter.succeeded(client)
        request.session.clear()
        request.session.update({"user": ctx.credentials.user, "csrf": new_csrf_token()})
        return RedirectResponse(target, status_code=303)

    # ---- session-only --------------------------------------------------------------------------

    async def _checked_form(request: Request) -> Any:
        form = await request.form()
        sent = form.get("csrf_token") or request.headers.get("x-csrf-token")
        return form if csrf_ok(request.session.get("csrf"), sent) else None

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        if await _checked_form(request) is None:
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        snap = reader.snapshot("overview", lambda db: queries.overview(db, ctx.capital))
        paper = controls.paper_view(snap.data["switches"], ctx.paper_strategies, ctx.paper_choices)
        return page(request, "overview.html", snap, paper=paper)

    @app.get("/strategies", response_class=HTMLResponse)
    def strategies(request: Request) -> HTMLResponse:
        snap = reader.snapshot("strategies", lambda db: queries.strategies(db, min_trades=ctx.min_trades))
        return page(request, "strategies.html", snap)

    @app.get("/strategies/compare", response_class=HTMLResponse)
    def compare(request: Request) -> HTMLResponse:
        sets = [s for s in request.query_params.getlist("ps") if s][:6]
        snap = reader.snapshot("compare:" + "|".join(sets), lambda db: queries.compare(db, sets))
        return page(request, "compare.html", snap)

    @app.get("/strategies/{param_set}", response_class=HTMLResponse)
    def backtest(request: Request, param_set: str, symbol: str | None = None) -> HTMLResponse:
        snap = reader.snapshot(f"backtest:{param_set}:{symbol}", lambda db: queries.backtest(db, param_set, symbol))
        return page(request, "backtest.html", snap)

    @app.get("/sweeps", response_class=HTMLResponse)
    def sweeps(request: Request) -> HTMLResponse:
        return page(request, "sweeps.html", reader.snapshot("sweeps", queries.sweeps))

    @app.get("/portfolio", response_class=HTMLResponse)
    def portfolio(request: Request) -> HTMLResponse:
        return page(request, "portfolio.html", reader.snapshot("portfolio", queries.portfolio))

    @app.get("/market", response_class=HTMLResponse)
    def market(request: Request) -> HTMLResponse:
        snap = reader.snapshot("market", lambda db: queries.market(db, ctx.markets, ctx.stream_symbols))
        return page(request, "market.html", snap)

    @app.get("/pipeline", response_class=HTMLResponse)
    def pipeline_page(request: Request) -> HTMLResponse:
        return page(request, "pipeline.html", None, runs=pipeline.recent_runs(ctx.dagster_url))

    @app.get("/events")
    async def events(request: Request) -> StreamingResponse:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(feed.stream(), media_type="text/event-stream", headers=headers)

    @app.post("/controls/risk")
    async def risk_control(request: Request) -> Response:
        form = await _checked_form(request)
        if form is None:
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        request.session["flash"] = await controls.risk_action(
            ctx, reader.gate, str(form.get("account", "")), str(form.get("action", "")), request.session["user"])
        return RedirectResponse("/", status_code=303)

    @app.post("/controls/paper")
    async def paper_control(request: Request) -> Response:
        form = await _checked_form(request)
        if form is None:
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        request.session["flash"] = await controls.paper_action(
            ctx, reader.gate, str(form.get("strategy", "")), str(form.get("enabled", "")), request.session["user"])
        return RedirectResponse("/", status_code=303)

    return app


def _safe_next(target: str) -> str:
    """Only a local path may follow a login (no open redirect to another site)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


"""Every page with data (numbers linked to their lineage) and with an empty or missing warehouse."""

from __future__ import annotations

import duckdb
import pytest
from fastapi.testclient import TestClient

from quantdag.dashboard.app import create_app
from quantdag.dashboard.pipeline import RUNS_QUERY

from .conftest import login, make_ctx
from .seed import ACCOUNT, DAGSTER_RUN, MLFLOW_RUN, PARAM_SET

PAGES = ("/", "/strategies", f"/strategies/{PARAM_SET}", f"/strategies/compare?ps={PARAM_SET}", "/sweeps", "/portfolio",
         "/market", "/pipeline")  # fmt: skip


def test_overview_shows_accounts_positions_orders_risk_and_alerts(client):
    html = client.get("/").text
    assert ACCOUNT in html and "10,045.00" in html  # last equity; P&L 45 over the 10,000 capital
    assert f'href="/strategies/{PARAM_SET}"' in html
    assert "qd-open-1" not in html and ">submitted<" in html  # the open order, by status
    assert 'class="state-halted">halted' in html and "drawdown from the equity peak reached 5.00%" in html
    assert 'value="resume"' in html and 'value="halt"' in html  # each risk account has its control


def test_strategy_pages_link_every_number_to_its_lineage(client):
    board = client.get("/strategies").text
    assert f'href="http://127.0.0.1:5000/#/runs/{MLFLOW_RUN}"' in board and "4.50%" in board and ">7<" in board
    page = client.get(f"/strategies/{PARAM_SET}").text
    assert f"/runs/{DAGSTER_RUN}" in page and f"/#/runs/{MLFLOW_RUN}" in page
    assert 'data-kind="candles"' in page and '"shape": "arrowUp"' in page  # trades marked on the candles
    assert "&#34;fee&#34;: 0.001" in page and "{&#34;fast&#34;: 10, &#34;slow&#34;: 50}" in page  # settings and params
    cmp = client.get(f"/strategies/compare?ps={PARAM_SET}&ps=nope").text
    assert "sharpe" in cmp and "1.7" in cmp


def test_sweeps_page_shows_heatmap_dsr_pbo_and_promotion(client):
    html = client.get("/sweeps").text
    assert "deflated Sharpe <b>0.91</b>" in html and "PBO <b>0.18</b>" in html
    assert "registered as a parameter set" in html
    assert html.count('style="background:hsl(') == 4  # 2 x 2 grid of fast x slow


def test_portfolio_and_market_pages(client):
    pf = client.get("/portfolio").text
    assert "research" in pf and "300" in pf and "portfolio:research" in pf
    mk = client.get("/market").text
    assert "BTC/USDT:1h" in mk and "jump (warning)" in mk and "stream ohlcv reconnect" in mk and "gap of 2 (filled)" in mk


def test_pipeline_page_says_dagster_is_not_reachable(client):
    assert "Dagster not reachable at http://127.0.0.1:" in client.get("/pipeline").text


def test_runs_query_is_valid_for_the_installed_dagster_graphql():
    graphql = pytest.importorskip("graphql")
    from dagster_graphql.schema import create_schema

    assert graphql.validate(create_schema().graphql_schema, graphql.parse(RUNS_QUERY)) == []


@pytest.mark.parametrize("kind", ["missing", "no tables"])
def test_every_page_renders_an_empty_state(tmp_path, kind):
    path = tmp_path / "qd.duckdb"
    if kind == "no tables":
        duckdb.connect(str(path)).close()
    with TestClient(create_app(make_ctx(path))) as c:
        login(c)
        for p in PAGES:
            r = c.get(p)
            assert r.status_code == 200, p
            assert "Traceback" not in r.text
        assert "No paper account has traded yet" in c.get("/").text
        assert "No backtest stored yet" in c.get("/strategies").text
        assert "No sweep stored yet" in c.get("/sweeps").text
        assert "No candle stored yet" in c.get("/market").text


def test_stored_text_is_escaped_not_executed(writable_db):
    from quantdag.store import Warehouse

    from .seed import T0

    with Warehouse(writable_db).transaction() as con:
        Warehouse.insert(con, "market.events", [{"exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h",
                                                 "event_type": "jump", "ts_start": T0, "ts_end": T0, "severity": "info",
                                                 "score": 1.0, "detail": "<script>alert(1)</script>"}])  # fmt: skip
    with TestClient(create_app(make_ctx(writable_db))) as c:
        html = login(c).get("/market").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html

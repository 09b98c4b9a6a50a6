"""The portfolio through the pipeline: weights, one shared-cash backtest in MLflow, its paper account and drift."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import mlflow
import polars as pl
import pytest

from pipeline_helpers import config_with, recent_days, run_job
from quantdag.strategies import create_strategy

MEMBERS = ["sma_cross", "regime_ma"]
ORDER = {"portfolio.equity": ("portfolio", "ts"), "portfolio.trades": ("portfolio", "ts", "symbol"),
         "portfolio.attribution": ("portfolio", "strategy", "symbol"), "portfolio.weights": ("portfolio", "strategy", "ts", "symbol"),
         "portfolio.strategy_equity": ("portfolio", "strategy", "ts")}  # fmt: skip


def _run(defs, name, **kw):
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(name).execute_in_process(instance=instance, **kw)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory, sim):
    """Ten days of data, the members' signals, the portfolio backtested twice and paper-traded once."""
    from pipelines.definitions import build_defs

    tmp = tmp_path_factory.mktemp("portfolio")
    config = config_with(
        strategies={"paper": []},
        portfolio={"name": "test", "strategies": MEMBERS, "shares": {"sma_cross": 0.6, "regime_ma": 0.4},
                   "execution": {"above_notional": 2000, "slices": 2, "duration_s": 0.2}, "drift_tolerance": 0.05},
    )  # fmt: skip
    defs = build_defs(tmp, config=config, sim_url=sim.url)
    assert run_job(defs, "daily_data_job", recent_days(10)).success
    keys = [create_strategy(m).key for m in MEMBERS]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", keys)
        for k in keys:
            assert defs.resolve_job_def("backtest_job").execute_in_process(instance=instance, partition_key=k).success
    first = _run(defs, "portfolio_job")
    wh = defs.resources["warehouse"].get()
    hashes = {t: wh.table_hash(t, cols) for t, cols in ORDER.items()}
    second = _run(defs, "portfolio_job")
    paper = _run(defs, "portfolio_paper_job")
    yield {"defs": defs, "wh": wh, "first": first, "second": second, "paper": paper, "hashes": hashes, "config": config}


def test_portfolio_job_stores_weights_equity_trades_and_attribution_that_sums(portfolio):
    wh = portfolio["wh"]
    assert portfolio["first"].success and portfolio["second"].success
    run = wh.query("SELECT * FROM portfolio.runs WHERE portfolio = 'test'").row(0, named=True)
    attribution = wh.query("SELECT * FROM portfolio.attribution WHERE portfolio = 'test'")
    assert sorted(attribution["strategy"].unique()) == sorted(create_strategy(m).key for m in MEMBERS)
    assert float(attribution["net_pnl"].sum()) == pytest.approx(run["final_equity"] - 10_000.0, abs=1e-9 * 10_000)
    eq = wh.query("SELECT * FROM portfolio.equity WHERE portfolio = 'test' ORDER BY ts")
    assert eq.height == 240 and eq["equity"][-1] == pytest.approx(run["final_equity"])
    sub = wh.query("SELECT ts, sum(equity) AS e FROM portfolio.strategy_equity WHERE portfolio = 'test' GROUP BY ts ORDER BY ts")
    assert sub["e"].to_list() == pytest.approx(eq["equity"].to_list(), rel=1e-9)
    settings = json.loads(run["settings"])
    assert settings["shares"] == {create_strategy("sma_cross").key: 0.6, create_strategy("regime_ma").key: 0.4}
    assert settings["fee"] > 0 and settings["slippage"] > 0 and settings["risk"]["max_drawdown"] == 0.2
    weights = wh.query("SELECT * FROM portfolio.weights WHERE portfolio = 'test'")
    assert weights.height > 0 and weights["weight"].min() >= 0 and weights["weight"].max() <= 1 / 3 + 1e-12


def test_portfolio_rerun_rewrites_identical_tables(portfolio):
    wh = portfolio["wh"]
    for table, cols in ORDER.items():
        assert wh.table_hash(table, cols) == portfolio["hashes"][table], table
    assert wh.query("SELECT count(*) AS n FROM portfolio.runs")["n"][0] == 1


def test_portfolio_backtest_is_one_mlflow_run_with_attribution_and_tear_sheet(portfolio):
    wh, defs = portfolio["wh"], portfolio["defs"]
    run = wh.query("SELECT * FROM portfolio.runs WHERE portfolio = 'test'").row(0, named=True)
    client = mlflow.MlflowClient(defs.resources["mlflow"].tracking_uri)
    got = client.get_run(run["mlflow_run_id"])
    assert got.info.status == "FINISHED" and got.data.tags["portfolio"] == "test"
    assert got.data.metrics["final_equity"] == pytest.approx(run["final_equity"])
    assert got.data.params["risk.max_drawdown"] == "0.2"
    assert {f"net_pnl.{create_strategy(m).key}" for m in MEMBERS} <= set(got.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run["mlflow_run_id"])}
    assert {"equity.parquet", "trades.parquet", "attribution.parquet", "report.html"} <= artifacts
    html = open(client.download_artifacts(run["mlflow_run_id"], "report.html")).read()
    assert "buy" in html.lower() and "equal" in html.lower() and create_strategy("sma_cross").key in html
    # two portfolio_job runs: two MLflow runs, one row in portfolio.runs (the latest)
    exp = client.get_experiment_by_name("quantdag-portfolios")
    assert len(client.search_runs([exp.experiment_id])) == 2


def test_portfolio_paper_account_trades_its_targets_with_tca_and_risk_state(portfolio):
    wh = portfolio["wh"]
    assert portfolio["paper"].success
    orders = wh.query("SELECT * FROM paper.orders WHERE broker = 'portfolio:test'")
    tca = wh.query("SELECT * FROM paper.tca WHERE strategy = 'portfolio-test'")
    parents = orders["parent_id"].unique().drop_nulls()
    assert orders.height >= 1 and tca.height == parents.len()  # every parent order has its TCA row
    state = wh.query("SELECT * FROM risk.state WHERE account = 'portfolio:test'").row(0, named=True)
    assert state["state"] == "active" and state["marks"] == 1
    meta = portfolio["paper"].asset_materializations_for_node("portfolio_paper")[0].metadata
    targets = meta["targets"].value
    positions = wh.query("SELECT symbol, qty FROM paper.positions WHERE broker = 'portfolio:test'")
    equity = meta["equity_before"].value
    for sym, qty in positions.iter_rows():
        px = orders.filter(pl.col("symbol") == sym)["avg_price"].mean()
        assert qty * px / equity == pytest.approx(targets[sym], abs=2e-3)  # sized on equity, through slippage


def test_portfolio_drift_pends_until_a_candle_closes_then_compares_with_a_shadow_backtest(portfolio):
    defs, wh = portfolio["defs"], portfolio["wh"]
    drift = wh.query("SELECT * FROM portfolio.drift WHERE portfolio = 'test'")
    assert drift.height == 7 and set(drift["status"]) == {"pending"}  # 3 positions, 3 traded, the P&L
    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    assert run_job(defs, "daily_data_job", [yesterday]).success
    assert _run(defs, "portfolio_paper_job").success
    drift = wh.query("SELECT * FROM portfolio.drift WHERE portfolio = 'test' ORDER BY kind, symbol")
    assert set(drift["status"]) <= {"ok", "diverged"}
    pnl = drift.filter(pl.col("kind") == "pnl").row(0, named=True)
    marks = wh.query("SELECT equity FROM paper.equity WHERE broker = 'portfolio:test' ORDER BY ts")
    assert pnl["paper"] == pytest.approx(marks["equity"][-1] / marks["equity"][0] - 1.0)
    assert pnl["difference"] == pytest.approx(abs(pnl["paper"] - pnl["backtest"]))


def test_ccxt_broker_trades_the_portfolio_through_the_simulators_signed_endpoints(tmp_path, monkeypatch):
    """portfolio.broker: ccxt — the pipeline's own ccxt client, keys from the environment, real signed HTTP."""
    from pipelines.definitions import build_defs
    from quantdag.sim import MarketModel, SimExchange
    from quantdag.sim.orders import install_orders
    from resources.exchange import SIM_GENESIS_MS

    key, secret = "PORTFOLIOKEY-0123456789abcdef", "PORTFOLIOSECRET-fedcba9876543210"
    monkeypatch.setenv("QUANTDAG_BINANCE_API_KEY", key)
    monkeypatch.setenv("QUANTDAG_BINANCE_SECRET", secret)
    with SimExchange(MarketModel(seed=7, genesis_ms=SIM_GENESIS_MS)) as sim:
        account = install_orders(sim, api_key=key, secret=secret, balances={"USDT": 10_000.0})
        config = config_with(strategies={"paper": []}, portfolio={"name": "venue", "strategies": ["sma_cross"], "broker": "ccxt",
                                                                  "execution": {"above_notional": 1e9}})  # fmt: skip
        defs = build_defs(tmp_path, config=config, sim_url=sim.url)
        assert run_job(defs, "daily_data_job", recent_days(4)).success
        k = create_strategy("sma_cross").key
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("param_sets", [k])
            assert defs.resolve_job_def("backtest_job").execute_in_process(instance=instance, partition_key=k).success
        assert _run(defs, "portfolio_job").success
        # a position to reach whatever the signal says now: hold a third of equity in each market
        wh = defs.resources["warehouse"].get()
        last = wh.query("SELECT max(ts) AS ts FROM market.candles")["ts"][0]
        with wh.transaction() as con:
            con.execute("INSERT INTO portfolio.weights SELECT 'venue', ?, ?, symbol, 0.3 FROM (VALUES ('BTC/USDT'), "
                        "('ETH/USDT'), ('SOL/USDT')) t(symbol) ON CONFLICT DO UPDATE SET weight = 0.3", [k, last])  # fmt: skip
        assert _run(defs, "portfolio_paper_job").success
        orders = wh.query("SELECT * FROM paper.orders WHERE broker = 'portfolio:venue'")
        assert orders.height == 3 and orders["exchange_order_id"].null_count() == 0  # acknowledged by the venue
        assert set(orders["status"]) <= {"filled", "partially_filled"}
        assert account.count_by_client_id() == {cid: 1 for cid in orders["client_order_id"]}  # each sent once, to the venue
        balances = wh.query("SELECT asset, total FROM paper.balances WHERE broker = 'portfolio:venue'")
        assert set(balances["asset"]) >= {"USDT", "BTC", "ETH", "SOL"}
        tca = wh.query("SELECT * FROM paper.tca WHERE strategy = 'portfolio-venue'")
        assert tca.height == 3 and tca["filled_qty"].min() > 0
        assert key not in json.dumps(orders.to_dicts(), default=str) and secret not in str(tca.to_dicts())

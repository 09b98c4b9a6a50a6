"""log_sweep into a real MLflow store (sqlite in tmp_path): run names, the heatmap and its one known gap."""

from __future__ import annotations

import dataclasses
import logging

import mlflow
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag.errors import ConfigurationError
from quantdag.markets import Market
from quantdag.optimize import optimize_strategy
from quantdag.stages.optimization import SweepOutcome
from quantdag.tracking import log_sweep

MARKET = Market("sim", "BTC/USDT", "1h")


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h").tail(3000)


def _outcome(candles: pl.DataFrame, grid: dict) -> SweepOutcome:
    result = optimize_strategy(candles, "sma_cross", grid=grid, min_trades=1, pbo_max_combos=20)
    return SweepOutcome(MARKET, result, "sma_cross-best", candles["ts"].min(), candles["ts"].max())


@pytest.fixture
def store(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    exp = client.create_experiment("optimization", artifact_location=(tmp_path / "mlartifacts").as_uri())
    yield client, exp


def test_log_sweep_two_parameter_space_names_children_by_rank_and_params_and_draws_heatmap(candles, store):
    client, exp = store
    outcome = _outcome(candles, {"fast": [5, 10], "slow": [30, 60, 90]})
    with mlflow.start_run(experiment_id=exp) as parent:
        ids = log_sweep(outcome, top_k=3)
    names = [client.get_run(i).info.run_name for i in ids]
    ranked = outcome.result.results.sort("sharpe", descending=True).head(3)
    assert names == [f"#{k + 1} fast={r['fast']} slow={r['slow']}" for k, r in enumerate(ranked.iter_rows(named=True))]
    assert {"heatmap.png", "results.parquet", "summary.json"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_log_sweep_one_parameter_space_skips_heatmap_with_log_line(candles, store, caplog):
    client, exp = store
    outcome = _outcome(candles, {"fast": [5, 10, 15], "slow": [60]})
    with caplog.at_level(logging.INFO, logger="quantdag.tracking.mlflow_runs"), mlflow.start_run(experiment_id=exp) as parent:
        ids = log_sweep(outcome, top_k=2)
    assert len(ids) == 2 and all(client.get_run(i).info.run_name.startswith(f"#{k + 1} fast=") for k, i in enumerate(ids))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "results.parquet" in artifacts and "heatmap.png" not in artifacts
    assert any("no heatmap" in r.getMessage() and "['fast']" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        # a varied parameter that is sometimes unset: its values cannot be ordered on an axis
        (lambda r: dataclasses.replace(r, results=r.results.with_columns(
            pl.when(pl.col("slow") == 30).then(None).otherwise(pl.col("slow")).alias("slow"))), TypeError),
        # the objective missing from the results table: heatmap's own ConfigurationError, not the known gap
        (lambda r: dataclasses.replace(r, results=r.results.drop("sharpe")), ConfigurationError),
    ],
    ids=["unorderable-param", "missing-objective-column"],
)
def test_log_sweep_heatmap_failure_other_than_one_parameter_space_raises(candles, store, broken, error):
    _, exp = store
    outcome = _outcome(candles, {"fast": [5, 10], "slow": [30, 60, 90]})
    outcome = dataclasses.replace(outcome, result=broken(outcome.result))
    with pytest.raises(error), mlflow.start_run(experiment_id=exp):
        log_sweep(outcome, top_k=2)


def test_log_sweep_minimised_objective_children_are_the_sweeps_best_not_its_worst(candles, store):
    """With objective max_drawdown the nested runs are the smallest drawdowns, as the sweep ranks them."""
    from quantdag.optimize.search import rank_results

    client, exp = store
    result = optimize_strategy(candles, "sma_cross", grid={"fast": [5, 10, 20], "slow": [30, 60, 90]}, min_trades=1,
                               objective="max_drawdown", pbo_max_combos=20)
    outcome = SweepOutcome(MARKET, result, "sma_cross-best", candles["ts"].min(), candles["ts"].max())
    with mlflow.start_run(experiment_id=exp):
        ids = log_sweep(outcome, top_k=3)
    got = [client.get_run(i).data.metrics["max_drawdown"] for i in ids]
    assert got == rank_results(result.results, "max_drawdown", 1)["max_drawdown"].head(3).to_list()
    assert got == sorted(got) and got[0] == result.results["max_drawdown"].min()

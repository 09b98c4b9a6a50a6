"""The optimization stage on short histories: the grid shrinks to what fits, or the sweep is skipped."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.markets import Market
from quantdag.stages.optimization import SweepSkipped, run_sweep
from quantdag.store import Slice, Warehouse

M = Market("sim", "BTC/USDT", "1h")


def _store_candles(wh: Warehouse, n: int, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    frame = pl.DataFrame({
        "exchange": "sim", "symbol": M.symbol, "timeframe": M.timeframe,
        "ts": [start + timedelta(hours=i) for i in range(n)],
        "open": close, "high": close * 1.002, "low": close * 0.998, "close": close, "volume": np.full(n, 10.0),
        "filled": False,
    }).with_columns(pl.col("ts").dt.cast_time_unit("ms"))
    wh.replace_slices("market.candles", frame, [Slice(where=M.where, time_column=None)], order_by=("exchange", "symbol", "timeframe", "ts"))


def test_run_sweep_history_shorter_than_slowest_combination_sweeps_only_those_that_fit(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    _store_candles(wh, 150)
    out = run_sweep(wh, "sma_cross", M, min_trades=1)
    summary = out.result.summary()
    assert summary["search_space"]["dropped_too_long"] > 0
    assert out.result.results.height == summary["n_evaluated"] < 348


def test_run_sweep_history_too_short_for_any_combination_is_skipped_with_the_reason(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    _store_candles(wh, 12)
    with pytest.raises(SweepSkipped, match=r"BTC/USDT:1h.*too few"):
        run_sweep(wh, "sma_cross", M)


# ---- sharded sweeps -----------------------------------------------------------------------------

RUN_COLUMNS = ("mlflow_run_id", "dagster_run_id")


def _stored(wh: Warehouse) -> dict[str, pl.DataFrame]:
    return {
        "sweeps": wh.query("SELECT * FROM optimize.sweeps ORDER BY ALL").drop(RUN_COLUMNS),
        "results": wh.query("SELECT * FROM optimize.results ORDER BY strategy, params_hash"),
    }


def test_sweep_strategy_from_three_shards_stores_the_one_process_tables(tmp_path):
    from polars.testing import assert_frame_equal

    from quantdag.stages.optimization import run_sweep_shard, sweep_strategy

    wh = Warehouse(tmp_path / "q.duckdb")
    _store_candles(wh, 600)
    shards = tmp_path / "shards"
    written = [run_sweep_shard(Warehouse(wh.path, read_only=True), "sma_cross", M, k, 3, shards, min_trades=1,
                               dagster_run_id=f"run-{k}") for k in (1, 2, 0)]  # fmt: skip
    assert len({w.sweep_id for w in written}) == 1 and sum(w.rows for w in written) > 100
    merged = sweep_strategy(wh, "sma_cross", M, shards=3, shard_dir=shards, min_trades=1, dagster_run_id="merge")
    assert sorted((s["shard"], s["dagster_run_id"]) for s in merged.outcome.shards) == [(0, "run-0"), (1, "run-1"), (2, "run-2")]
    from_shards = _stored(wh)
    sweep_strategy(wh, "sma_cross", M, min_trades=1)
    single = _stored(wh)
    for name in single:
        assert_frame_equal(from_shards[name], single[name], check_exact=True)


def test_merge_after_the_candles_changed_refuses_the_old_shards_naming_what_is_missing(tmp_path):
    from quantdag.optimize.shards import MissingShards
    from quantdag.stages.optimization import merge_sweep, run_sweep_shard

    wh = Warehouse(tmp_path / "q.duckdb")
    _store_candles(wh, 400)
    shards = tmp_path / "shards"
    for k in range(2):
        run_sweep_shard(wh, "sma_cross", M, k, 2, shards, min_trades=1)
    _store_candles(wh, 401)  # a new candle: the shards were computed on other data
    with pytest.raises(MissingShards, match=r"shard\(s\) 0, 1 of 2 missing.*other sweeps") as err:
        merge_sweep(wh, "sma_cross", M, 2, shards, min_trades=1)
    assert err.value.missing == (0, 1)
    run_sweep_shard(wh, "sma_cross", M, 0, 2, shards, min_trades=1)
    with pytest.raises(MissingShards, match=r"shard\(s\) 1 of 2 missing"):
        merge_sweep(wh, "sma_cross", M, 2, shards, min_trades=1)


def test_bayes_shards_share_one_study_in_the_data_dirs_sqlite_file(tmp_path):
    from quantdag.optimize.shards import study_trials
    from quantdag.stages.optimization import merge_sweep, optuna_storage_url, run_sweep_shard, study_name

    wh = Warehouse(tmp_path / "q.duckdb")
    _store_candles(wh, 500)
    url = optuna_storage_url(None, tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve() / 'optuna.db'}"
    opts = dict(search="bayes", n_trials=9, min_trades=1)
    written = [run_sweep_shard(wh, "sma_cross", M, k, 3, tmp_path / "shards", optuna_storage=url, **opts) for k in range(3)]
    assert (tmp_path / "optuna.db").exists()
    trials = study_trials(url, study_name("sma_cross", written[0].sweep_id))
    assert len(trials) == 9  # 3 + 3 + 3: one study, each shard its share
    outcome = merge_sweep(wh, "sma_cross", M, 3, tmp_path / "shards", optuna_storage=url, **opts)
    assert outcome.result.search == "bayes" and 1 <= outcome.result.results.height <= 9


def test_optuna_storage_from_an_environment_variable_is_masked_and_an_unset_one_is_named(monkeypatch):
    from quantdag.errors import ConfigurationError
    from quantdag.exchange.secrets import scrub
    from quantdag.stages.optimization import masked_url, optuna_storage_url

    monkeypatch.setenv("QD_TEST_OPTUNA", "postgresql://optuna:canary-pw-5f3a@db.example/optuna")
    url = optuna_storage_url("${QD_TEST_OPTUNA}", "/unused")
    assert url.endswith("@db.example/optuna")
    assert "canary-pw-5f3a" not in scrub(f"connecting to {url}") and "canary-pw-5f3a" not in masked_url(url)
    monkeypatch.delenv("QD_TEST_OPTUNA")
    with pytest.raises(ConfigurationError, match="QD_TEST_OPTUNA is not set"):
        optuna_storage_url("${QD_TEST_OPTUNA}", "/unused")

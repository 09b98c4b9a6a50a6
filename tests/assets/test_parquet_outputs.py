"""warehouse.outputs: parquet — the backtest job's heavy tables as Parquet files, equal to the DuckDB run."""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline_helpers import config_with, recent_days, run_job
from quantdag.strategies import create_strategy
from quantdag.strategies.keys import param_set_key

KEY_COLS = ("strategy", "params_hash", "exchange", "symbol", "timeframe")
SETS = [{"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}, {"strategy": "rsi", "params": {}}]


def _run(tmp, sim_url: str, **warehouse):
    from pipelines.definitions import build_defs
    from pipelines.batches import range_tags_of

    config = config_with(strategies={"defaults": False, "param_sets": SETS, "paper": []}, **({"warehouse": warehouse} if warehouse else {}))
    defs = build_defs(tmp, config=config, sim_url=sim_url)
    assert run_job(defs, "daily_data_job", recent_days(6)).success
    keys = [param_set_key(create_strategy(s["strategy"], s["params"])) for s in SETS]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", keys)
        assert defs.resolve_job_def("backtest_job").execute_in_process(instance=instance, tags=range_tags_of(keys)).success
    return defs.resources["warehouse"].get()


@pytest.mark.slow
def test_parquet_outputs_give_the_tables_of_the_duckdb_run(tmp_path, sim):
    plain = _run(tmp_path / "duckdb", sim.url)
    pq = _run(tmp_path / "parquet", sim.url, outputs="parquet")
    assert pq.parquet_dir == (tmp_path / "parquet" / "parquet").resolve()
    for table, col in (("signals.signals", "ts"), ("backtest.trades", "trade_id"), ("backtest.equity", "ts")):
        assert pq.table_hash(table, (*KEY_COLS, col)) == plain.table_hash(table, (*KEY_COLS, col)), table
        files = [p for p in (pq.parquet_dir / table.split(".")[0] / table.split(".")[1]).glob("*.parquet") if p.name != "_schema.parquet"]
        assert len(files) == 2 * 3  # a parameter set x a research market each
    metrics = "SELECT strategy, symbol, final_equity, n_trades FROM backtest.runs ORDER BY ALL"
    assert pq.query(metrics).equals(plain.query(metrics))
    kinds = pq.query("SELECT table_schema || '.' || table_name AS t, table_type FROM information_schema.tables "
                     "WHERE table_schema IN ('signals', 'backtest') ORDER BY 1")  # fmt: skip
    assert dict(kinds.iter_rows()) == {"backtest.equity": "VIEW", "backtest.runs": "BASE TABLE", "backtest.trades": "VIEW",
                                       "signals.lookahead": "BASE TABLE", "signals.param_sets": "BASE TABLE", "signals.signals": "VIEW"}

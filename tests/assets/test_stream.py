"""Streamed candles through the pipeline: landed files stored by a job, freshness per market in the UI."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import polars as pl

from pipeline_helpers import config_with
from quantdag.stream.landing import pending, write_batch


def _landed(minutes_ago: list[int]) -> pl.DataFrame:
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    return pl.DataFrame([{
        "exchange": "sim", "symbol": sym, "timeframe": "1m", "ts": now - timedelta(minutes=m), "open": 1.0, "high": 2.0,
        "low": 0.5, "close": 1.5, "volume": 3.0, "source": "stream", "received_at": now,
    } for sym in ("BTC/USDT", "ETH/USDT") for m in minutes_ago]).with_columns(
        pl.col("ts", "received_at").cast(pl.Datetime("ms", "UTC")))  # fmt: skip


def test_stream_ingest_job_stores_waiting_candles_and_checks_every_markets_freshness(tmp_path, sim):
    from pipelines.definitions import build_defs

    config = config_with(universe={"start_date": "10d", "markets": [{"symbol": "BTC/USDT"}, {"symbol": "ETH/USDT"}],
                                   "research_markets": ["BTC/USDT:1h"]})  # fmt: skip
    defs = build_defs(tmp_path, config=config, sim_url=sim.url)
    write_batch(tmp_path / "landing", _landed([5, 4, 3, 2]), session="s-test")
    now = datetime.now(timezone.utc)
    gap = pl.DataFrame([{"exchange": "sim", "symbol": "ETH/USDT", "channel": "ohlcv", "kind": "gap", "first_ts": now,
                         "last_ts": now, "count": 2, "detail": "neither streamed nor on REST", "seen_at": now}])
    write_batch(tmp_path / "landing", gap.with_columns(pl.col("first_ts", "last_ts", "seen_at").cast(pl.Datetime("ms", "UTC"))),
                session="s-test", kind="events")  # fmt: skip
    old = pending(tmp_path / "landing")[0]
    os.utime(old, (time.time() - 120, time.time() - 120))
    sensor = defs.resolve_sensor_def("ingest_streamed_candles")
    with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()) as ctx:
        requests = sensor.evaluate_tick(ctx).run_requests
        assert len(requests) == 1  # a file the streamer left for over 30 s
        result = defs.resolve_job_def("stream_ingest_job").execute_in_process(instance=instance)
    assert result.success
    meta = result.asset_materializations_for_node("streamed_candles")[0].metadata
    assert meta["candles"].value == 8 and meta["stream_events_24h"].value == {"ohlcv gap": 2}  # the UI shows the gap
    wh = defs.resources["warehouse"].get()
    assert wh.query("SELECT count(*) AS n FROM market.candles WHERE timeframe = '1m'")["n"][0] == 8
    assert set(wh.query("SELECT DISTINCT session FROM market.stream_candles")["session"]) == {"s-test"}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "streams_fresh" and check.passed  # the last candle closed a minute ago
    assert pending(tmp_path / "landing") == []
    # ten minutes on, with nothing streamed: the check warns, naming the markets
    from quantdag.stages.stream import freshness

    stale = freshness(wh, [m.on("sim") for m in config.markets], now=datetime.now(timezone.utc) + timedelta(minutes=10))
    assert not stale["fresh"].any() and set(stale["market"]) == {"BTC/USDT:1m", "ETH/USDT:1m"}

"""The daily_digest sensor: the digest once a day after its hour, a heartbeat every N hours, never twice."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg

from pipelines.sensors import digest_tick
from quantdag.config import AlertSettings
from tests.quantdag.dashboard.seed import T0, seed
from tests.quantdag.tracking.receivers import Receiver


def test_digest_and_heartbeat_are_sent_when_due_and_only_then(tmp_path, monkeypatch):
    db = tmp_path / "quantdag.duckdb"
    seed(db)
    hook = Receiver()
    monkeypatch.setenv("QUANTDAG_ALERT_WEBHOOK", hook.url + "/hook")
    alerts = AlertSettings(digest_hour=8, heartbeat_hours=6)
    try:
        with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance) as ctx:
            sent = lambda: [json.loads(r["body"])["event"] for r in hook.requests]  # noqa: E731
            early = T0.replace(hour=7)
            assert "heartbeat" in digest_tick(ctx, alerts, str(db), early, 10_000.0).skip_message
            assert sent() == ["heartbeat"]  # before 08:00: no digest yet
            nine = T0.replace(hour=9)
            assert "digest" in digest_tick(ctx, alerts, str(db), nine, 10_000.0).skip_message
            assert sent() == ["heartbeat", "digest"]
            assert digest_tick(ctx, alerts, str(db), nine + timedelta(hours=3), 10_000.0).skip_message == "nothing due"
            digest_tick(ctx, alerts, str(db), early + timedelta(hours=6), 10_000.0)
            assert sent() == ["heartbeat", "digest", "heartbeat"]
            digest_tick(ctx, alerts, str(db), nine + timedelta(days=1), 10_000.0)
            assert sent()[-2:] == ["digest", "heartbeat"]
            assert json.loads(ctx.cursor)["digest"] == (T0 + timedelta(days=1)).date().isoformat()
    finally:
        hook.close()

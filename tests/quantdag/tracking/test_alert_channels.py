"""Alert channels through Apprise, each against a local receiver; per-event on/silent/off; secrets
scrubbed before anything leaves; the daily digest and heartbeat texts."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from quantdag.config import AlertSettings
from quantdag.exchange import Credentials
from quantdag.store import Warehouse
from quantdag.tracking import send_alert
from quantdag.tracking.alerts import _silenced
from quantdag.tracking.digest import digest_text, heartbeat_text
from tests.quantdag.dashboard.seed import ACCOUNT, T0, seed

from .receivers import Receiver, SmtpReceiver


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_each_apprise_channel_gets_the_scrubbed_alert(receiver, monkeypatch):
    Credentials(api_key="canary-apprise-key-778899", secret="canary-apprise-secret-998877")
    monkeypatch.setenv("QUANTDAG_ALERT_URLS", f"json://127.0.0.1:{receiver.server.server_port}/json "
                                              f"ntfy://127.0.0.1:{receiver.server.server_port}/quantdag")  # fmt: skip
    text = send_alert("risk halted, key canary-apprise-key-778899", event="risk", settings=AlertSettings())
    assert text == "ALERT risk halted, key ***"
    paths = sorted(r["path"] for r in receiver.requests)
    assert paths == ["/", "/json"]  # ntfy posts its JSON (topic inside) to the server's root
    bodies = " ".join(r["body"] for r in receiver.requests)
    assert bodies.count("ALERT risk halted, key ***") == 2 and "canary-apprise" not in bodies


def test_the_email_channel_delivers_the_scrubbed_alert_to_a_local_smtp_server(monkeypatch):
    Credentials(api_key="canary-mail-key-445566", secret="canary-mail-secret-665544")
    smtp = SmtpReceiver()
    try:
        monkeypatch.setenv("QUANTDAG_ALERT_URLS", f"mailto://bot:mailpass@127.0.0.1:{smtp.port}?mode=insecure"
                                                  "&from=bot@quantdag.test&to=trader@quantdag.test")  # fmt: skip
        text = send_alert("drawdown limit hit, key canary-mail-key-445566", event="risk", settings=AlertSettings())
    finally:
        smtp.close()
    assert text == "ALERT drawdown limit hit, key ***"
    (mail,) = smtp.messages
    assert "trader@quantdag.test" in " ".join(mail["to"]) and "bot@quantdag.test" in mail["from"]
    assert "ALERT drawdown limit hit, key ***" in mail["data"] and "canary-mail" not in mail["data"]


def test_event_settings_off_silent_on(receiver, monkeypatch, caplog):
    hook = f"{receiver.url}/hook"
    settings = AlertSettings(events={"digest": "off", "heartbeat": "silent", "risk": "on"})
    with caplog.at_level(logging.INFO, logger="quantdag.alerts"):
        send_alert("digest text", event="digest", webhook_url=hook, settings=settings)
    assert receiver.requests == [] and "alert digest: off" in caplog.text
    send_alert("alive", event="heartbeat", webhook_url=hook, settings=settings)
    send_alert("halted", event="risk", webhook_url=hook, settings=settings)
    sent = [json.loads(r["body"]) for r in receiver.requests]
    assert [(s["event"], s["silent"]) for s in sent] == [("heartbeat", True), ("risk", False)]
    assert _silenced("tgram://123:abc/456") == "tgram://123:abc/456?silent=yes"
    assert _silenced("tgram://123:abc/456?format=text") == "tgram://123:abc/456?format=text&silent=yes"
    assert _silenced("discord://a/b") == "discord://a/b"
    # YAML reads a bare on/off as true/false
    assert AlertSettings(events={"digest": False, "risk": True}).events | {} == {**AlertSettings().events, "digest": "off", "risk": "on"}
    with pytest.raises(ValueError, match="unknown alert event"):
        AlertSettings(events={"nope": "on"})


def test_digest_and_heartbeat_read_the_warehouse(tmp_path):
    wh = seed(tmp_path / "qd.duckdb")
    now = T0 + timedelta(hours=12)
    text = digest_text(wh, 10_000.0, now)
    assert text.startswith("quantdag daily digest 2026-11-01 12:00 UTC")
    assert f"{ACCOUNT}: equity 10,045.00 (+45.00 in 24h, +45.00 total), active" in text
    assert "risk portfolio:research: halted (max_drawdown:" in text and "fills in 24h: 1" in text
    assert heartbeat_text(wh, T0 + timedelta(days=2)) == (
        "quantdag heartbeat 2026-11-03 00:00 UTC: newest candle opened 1.0 h ago (2026-11-02 23:00)")
    assert "no candle stored yet" in heartbeat_text(None, datetime.now(timezone.utc))
    empty = Warehouse(tmp_path / "empty.duckdb")
    empty.ensure_schema()
    assert "no paper account yet" in digest_text(empty, 10_000.0)

"""The Telegram bot against a local fake Bot API: allowed users get answers from the warehouse,
everyone else gets nothing; /halt and /resume go through risk_store; the token never logged."""

from __future__ import annotations

import logging

import pytest

from quantdag.errors import ConfigurationError
from quantdag.store import Warehouse
from quantdag.tracking.telegram_bot import TelegramBot
from tests.quantdag.dashboard.seed import ACCOUNT, seed

from .receivers import FakeBotApi

TOKEN = "123456:canary-bot-token-ABCdef"
ALICE, MALLORY = 1111, 6666


@pytest.fixture
def bot_and_api(tmp_path):
    db = tmp_path / "qd.duckdb"
    seed(db)
    api = FakeBotApi(TOKEN)
    yield TelegramBot(TOKEN, [ALICE], db, capital=10_000.0, base_url=api.url, poll_timeout=0), api
    api.close()


def test_allowed_user_gets_status_positions_profit_and_daily(bot_and_api, caplog):
    bot, api = bot_and_api
    for cmd in ("/status", "/positions", "/profit", "/daily", "/help"):
        api.queue(ALICE, cmd)
    with caplog.at_level(logging.DEBUG):
        assert bot.poll_once() == 5
    assert len(api.sent) == 5 and all(s["chat_id"] == ALICE for s in api.sent)
    status, positions, profit, daily, helptext = (s["text"] for s in api.sent)
    assert f"{ACCOUNT}: 10,045.00" in status and "portfolio:research: halted" in status
    assert f"{ACCOUNT} BTC/USDT: 0.25 @ 101.5" in positions
    assert f"{ACCOUNT}: +45.00 (+0.45%)" in profit
    assert daily == "no full day yet"  # the seeded marks are weeks old: nothing in the last 7 days
    assert "/halt ACCOUNT" in helptext
    assert TOKEN not in caplog.text
    assert bot.poll_once() == 0 and len(api.sent) == 5  # each update answered once (offset moves on)


def test_daily_lists_each_days_change_of_the_last_mark(bot_and_api):
    from datetime import datetime, timedelta, timezone

    bot, api = bot_and_api
    today = datetime.now(timezone.utc).replace(hour=0, minute=30, second=0, microsecond=0)
    with Warehouse(bot.warehouse).transaction() as con:
        Warehouse.insert(con, "paper.equity", [{"broker": ACCOUNT, "ts": today - timedelta(days=1), "equity": 10_100.0,
                                                "risk_state": "active", "positions": "{}"},
                                               {"broker": ACCOUNT, "ts": today, "equity": 10_075.5,
                                                "risk_state": "active", "positions": "{}"}])  # fmt: skip
    api.queue(ALICE, "/daily")
    bot.poll_once()
    assert api.sent[0]["text"].split("\n")[0] == f"{today:%Y-%m-%d} {ACCOUNT}: -24.50"


def test_other_users_get_nothing_not_even_a_refusal(bot_and_api):
    bot, api = bot_and_api
    api.queue(MALLORY, "/status")
    api.queue(MALLORY, "/halt " + ACCOUNT)
    assert bot.poll_once() == 2
    assert api.sent == []
    wh = Warehouse(bot.warehouse, read_only=True)
    assert wh.query("SELECT state FROM risk.state WHERE account = ?", [ACCOUNT])["state"][0] == "active"


def test_halt_and_resume_from_telegram_are_stored_as_risk_events(bot_and_api):
    bot, api = bot_and_api
    api.queue(ALICE, f"/halt {ACCOUNT}")
    api.queue(ALICE, "/resume portfolio:research")
    api.queue(ALICE, "/halt paper:nobody")
    bot.poll_once()
    assert [s["text"] for s in api.sent][:2] == [f"{ACCOUNT}: halt stored; its next cycle acts on it",
                                                 "portfolio:research: resume stored; its next cycle acts on it"]  # fmt: skip
    assert "not done" in api.sent[2]["text"]
    wh = Warehouse(bot.warehouse, read_only=True)
    states = dict(wh.query("SELECT account, state FROM risk.state").rows())
    assert states == {ACCOUNT: "halted", "portfolio:research": "active"}
    reasons = wh.query("SELECT reason FROM risk.events WHERE rule = 'manual' ORDER BY ts")["reason"].to_list()
    assert reasons == [f"halt from Telegram by user {ALICE}", f"resume from Telegram by user {ALICE}"]


def test_bot_refuses_to_start_without_token_or_users(tmp_path):
    with pytest.raises(ConfigurationError, match="token"):
        TelegramBot("", [ALICE], tmp_path / "x.duckdb", capital=1.0)
    with pytest.raises(ConfigurationError, match="allowed_users"):
        TelegramBot(TOKEN, [], tmp_path / "x.duckdb", capital=1.0)


def test_a_wrong_token_is_reported_without_the_token(tmp_path):
    api = FakeBotApi("other:token")
    try:
        bot = TelegramBot(TOKEN, [ALICE], tmp_path / "x.duckdb", capital=1.0, base_url=api.url, poll_timeout=0)
        with pytest.raises(Exception, match="Unauthorized") as info:
            bot.poll_once()
        assert TOKEN not in str(info.value) and TOKEN not in repr(bot)
    finally:
        api.close()

"""A Telegram bot for the paper accounts: ``/status /positions /profit /daily /halt /resume``.

It long-polls the Bot API (``getUpdates``) and answers only the user ids in
``alerts.telegram.allowed_users``; anyone else gets nothing at all (not even a refusal, which would
confirm the bot exists). Reads the warehouse read-only per command; ``/halt`` and ``/resume`` go
through ``quantdag.portfolio.risk_store`` like the CLI and the dashboard, logged in ``risk.events``.
The token comes from the environment (``alerts.telegram.token_env``) and never reaches a log line.

``python -m quantdag.tracking.telegram_bot`` runs it until Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quantdag.errors import ConfigurationError
from quantdag.store import Warehouse, WarehouseError
from quantdag.tracking import digest

log = logging.getLogger(__name__)

COMMANDS = {
    "/status": "accounts, equity and risk state",
    "/positions": "open positions",
    "/profit": "P&L of each account",
    "/daily": "P&L per day, last 7 days",
    "/halt": "/halt ACCOUNT: halt an account",
    "/resume": "/resume ACCOUNT: lift a halt",
}


class BotApiError(Exception):
    """The Bot API answered ``ok: false`` or could not be reached."""


class TelegramBot:
    """One bot over one warehouse; ``poll_once`` handles the updates waiting, ``run`` loops."""

    def __init__(self, token: str, allowed_users: Sequence[int], warehouse: Path, *, capital: float,
                 base_url: str = "https://api.telegram.org", webhook_env: str = "QUANTDAG_ALERT_WEBHOOK",
                 poll_timeout: int = 20) -> None:  # fmt: skip
        if not token:
            raise ConfigurationError("the Telegram bot needs its token (alerts.telegram.token_env)")
        if not allowed_users:
            raise ConfigurationError("alerts.telegram.allowed_users is empty: the bot would answer no one")
        self._token = token
        self.allowed = frozenset(int(u) for u in allowed_users)
        self.warehouse = Path(warehouse)
        self.capital = capital
        self.base_url = base_url.rstrip("/")
        self.webhook_env = webhook_env
        self.poll_timeout = poll_timeout
        self.offset: int | None = None

    def __repr__(self) -> str:
        return f"TelegramBot(users={sorted(self.allowed)}, base_url={self.base_url!r})"

    # ---- Bot API -----------------------------------------------------------------------------

    def _call(self, method: str, **params: Any) -> Any:
        url = f"{self.base_url}/bot{self._token}/{method}"
        req = urllib.request.Request(url, data=json.dumps(params).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.poll_timeout + 10) as resp:
                answer = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise BotApiError(f"{method}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:  # the token is in the URL: never show the exception's text raw
            raise BotApiError(f"{method}: {str(exc).replace(self._token, '***')}") from None
        if not answer.get("ok"):
            raise BotApiError(f"{method}: {str(answer.get('description', 'not ok'))[:200]}")
        return answer.get("result")

    def poll_once(self) -> int:
        """Fetch the waiting updates, answer the allowed ones; how many updates were seen."""
        params: dict[str, Any] = {"timeout": self.poll_timeout, "allowed_updates": ["message"]}
        if self.offset is not None:
            params["offset"] = self.offset
        updates = self._call("getUpdates", **params) or []
        for u in updates:
            self.offset = int(u["update_id"]) + 1
            self.handle(u)
        return len(updates)

    def handle(self, update: dict) -> str | None:
        """Answer one update if it is a command from an allowed user; the reply sent (None: silence)."""
        msg = update.get("message") or {}
        user = (msg.get("from") or {}).get("id")
        text = (msg.get("text") or "").strip()
        if user not in self.allowed:
            log.info("telegram: ignored a message from user id %s (not allowed)", user)
            return None
        if not text.startswith("/"):
            return None
        reply = self.reply(text, int(user))
        self._call("sendMessage", chat_id=msg["chat"]["id"], text=reply[:4000])
        return reply

    def run(self) -> None:
        delay = 1.0
        while True:
            try:
                self.poll_once()
                delay = 1.0
            except BotApiError as exc:
                log.warning("telegram: %s; retrying in %.0fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 60.0)

    # ---- commands ----------------------------------------------------------------------------

    def reply(self, text: str, user: int) -> str:
        cmd, *args = text.split()
        cmd = cmd.split("@")[0].lower()  # /status@quantdag_bot in groups
        try:
            if cmd in ("/halt", "/resume"):
                return self._control(cmd[1:], args, user)
            if cmd not in COMMANDS:
                return "commands:\n" + "\n".join(f"{c} - {h}" for c, h in COMMANDS.items())
            if not self.warehouse.exists():
                return "no warehouse yet (run make demo or the pipeline)"
            with Warehouse(self.warehouse, read_only=True, lock_timeout=5.0).session() as wh:
                return self._read(cmd, wh)
        except WarehouseError:
            return "the warehouse is busy (a job is writing); try again in a minute"

    def _read(self, cmd: str, wh: Warehouse) -> str:
        from datetime import datetime, timedelta, timezone

        if cmd == "/status":
            accs = digest.accounts(wh, datetime.now(timezone.utc) - timedelta(hours=24), self.capital)
            risk = {r["account"]: r for r in digest.risk_states(wh)}
            lines = [f"{a['account']}: {a['equity']:,.2f} ({a['change']:+,.2f} 24h) {risk.get(a['account'], {}).get('state', a['risk_state'])}"
                     for a in accs]  # fmt: skip
            lines += [f"{k}: {r['state']}" for k, r in risk.items() if k not in {a["account"] for a in accs}]
            return "\n".join(lines) or "no account yet"
        if cmd == "/positions":
            rows = digest.positions(wh)
            return "\n".join(f"{r['account']} {r['symbol']}: {r['qty']:g} @ {r['avg_price']:,.4g}" for r in rows) or "no open position"
        if cmd == "/profit":
            accs = digest.accounts(wh, datetime.now(timezone.utc), self.capital)
            return "\n".join(f"{a['account']}: {a['pnl']:+,.2f} ({a['pnl'] / self.capital:+.2%})" for a in accs) or "no account yet"
        rows = [r for r in digest.daily_pnl(wh) if r["pnl"] is not None]  # /daily
        return "\n".join(f"{r['day']} {r['account']}: {r['pnl']:+,.2f}" for r in rows) or "no full day yet"

    def _control(self, action: str, args: list[str], user: int) -> str:
        from quantdag.portfolio import risk_store

        if not args:
            return f"/{action} ACCOUNT (see /status for the names)"
        account = args[0]
        fn = risk_store.halt if action == "halt" else risk_store.resume
        try:
            fn(Warehouse(self.warehouse, lock_timeout=15.0), account, f"{action} from Telegram by user {user}",
               webhook_env=self.webhook_env)  # fmt: skip
        except ConfigurationError as exc:
            return f"{action} {account}: not done ({exc})"
        return f"{account}: {action} stored; its next cycle acts on it"


def main() -> int:
    import os
    import sys

    from quantdag.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config()
    t = config.alerts.telegram
    try:
        bot = TelegramBot(os.environ.get(t.token_env, ""), t.allowed_users, config.data_path / "quantdag.duckdb",
                          capital=config.paper.capital, base_url=t.base_url, webhook_env=config.alerts.webhook_env)  # fmt: skip
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"telegram bot: answering {sorted(bot.allowed)} (Ctrl-C stops)", flush=True)
    try:
        bot.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

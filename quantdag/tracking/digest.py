"""What the periodic messages say: the daily digest (accounts, P&L over the day, risk, fills) and
the heartbeat (alive, last candle's age). Shared by the digest sensor and the Telegram bot, so a
phone reads the same numbers as the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb

from quantdag.store import Warehouse


def _rows(wh: Warehouse, sql: str, params: list | None = None) -> list[dict]:
    try:
        return wh.query(sql, params).to_dicts()
    except duckdb.CatalogException:  # a table not written yet: nothing to say about it
        return []


def accounts(wh: Warehouse, since: datetime, capital: float) -> list[dict]:
    """Each paper account: last equity, the change since ``since`` (its first mark if later), P&L over ``capital``."""
    rows = _rows(wh, "SELECT broker AS account, arg_max(equity, ts) AS equity, arg_min(equity, ts) AS first, "
                     "arg_max(equity, ts) FILTER (WHERE ts <= ?) AS at_since, arg_max(risk_state, ts) AS risk_state "
                     "FROM paper.equity GROUP BY broker ORDER BY broker", [since])  # fmt: skip
    for r in rows:
        base = r["at_since"] if r["at_since"] is not None else r["first"]
        r["change"] = r["equity"] - base
        r["pnl"] = r["equity"] - capital
    return rows


def positions(wh: Warehouse) -> list[dict]:
    return _rows(wh, "SELECT broker AS account, symbol, qty, avg_price FROM paper.positions WHERE qty <> 0 ORDER BY broker, symbol")


def risk_states(wh: Warehouse) -> list[dict]:
    return _rows(wh, "SELECT account, state, rule, reason FROM risk.state ORDER BY account")


def daily_pnl(wh: Warehouse, days: int = 7) -> list[dict]:
    """Per UTC day and account: the change of the last equity mark over the previous day's."""
    return _rows(wh, "WITH d AS (SELECT broker, CAST(ts AS DATE) AS day, arg_max(equity, ts) AS eq FROM paper.equity "
                     "GROUP BY ALL) SELECT broker AS account, day, eq - lag(eq) OVER (PARTITION BY broker ORDER BY day) AS pnl "
                     "FROM d QUALIFY day >= current_date - ? ORDER BY day DESC, broker", [days])  # fmt: skip


def digest_text(wh: Warehouse, capital: float, now: datetime | None = None) -> str:
    """The daily digest: every account's equity and its change over 24 h, risk states, fills."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(hours=24)
    lines = [f"quantdag daily digest {now:%Y-%m-%d %H:%M} UTC"]
    accs = accounts(wh, since, capital)
    for a in accs:
        lines.append(f"{a['account']}: equity {a['equity']:,.2f} ({a['change']:+,.2f} in 24h, {a['pnl']:+,.2f} total), {a['risk_state']}")
    if not accs:
        lines.append("no paper account yet")
    not_active = [r for r in risk_states(wh) if r["state"] != "active"]
    for r in not_active:
        lines.append(f"risk {r['account']}: {r['state']} ({r['rule']}: {r['reason']})")
    fills = _rows(wh, "SELECT count(*) AS n FROM paper.fills WHERE ts > ?", [since])
    lines.append(f"fills in 24h: {fills[0]['n'] if fills else 0}")
    return "\n".join(lines)


def heartbeat_text(wh: Warehouse | None, now: datetime | None = None) -> str:
    """Alive, and how old the newest stored candle is (a stalled pipeline shows here first)."""
    now = now or datetime.now(timezone.utc)
    last = _rows(wh, "SELECT max(ts) AS ts FROM market.candles") if wh is not None else []
    ts = last[0]["ts"] if last else None
    age = "no candle stored yet" if ts is None else f"newest candle opened {(now - ts).total_seconds() / 3600:.1f} h ago ({ts:%Y-%m-%d %H:%M})"
    return f"quantdag heartbeat {now:%Y-%m-%d %H:%M} UTC: {age}"

"""Risk state that survives restarts: ``risk.state`` (one row per account) and ``risk.events``.

The paper path marks an account once per cycle through :func:`mark`, which runs the very same
:func:`~quantdag.portfolio.risk.update_state` the portfolio backtest runs on every candle, on the
state stored by the previous cycle (so a peak is never forgotten and a halt is never lifted by a
restart). Every trip and resume is stored as an event and sent as an alert; :func:`halt` and
:func:`resume` are the manual controls (a dashboard button, a human at a shell), logged the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from quantdag.errors import ConfigurationError
from quantdag.portfolio.risk import (
    ACTIVE,
    EV_MANUAL_HALT,
    EV_MANUAL_RESUME,
    EVENT_RULES,
    HALTED,
    S_CANDLES,
    S_DAY,
    S_DAY_START,
    S_HALTED_AT,
    S_LAST,
    S_PEAK,
    S_STATE,
    STATE_NAMES,
    RiskRules,
    event_reason,
    new_state,
    update_state,
)
from quantdag.store import Warehouse
from quantdag.tracking import WEBHOOK_ENV, send_alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RiskMark:
    """What one mark did: the state after it and the events (state, rule, reason) it caused."""

    state: str
    events: list[tuple[str, str, str]]
    vector: np.ndarray


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def load(wh: Warehouse, account: str, equity: float, ts_ms: int) -> np.ndarray:
    """The stored state vector of ``account``, or a fresh ACTIVE one peaked at ``equity``."""
    rows = wh.query("SELECT state, peak, day, day_start, halted_at, marks, equity FROM risk.state WHERE account = ?", [account])
    if not rows.height:
        return new_state(equity, ts_ms)
    r = rows.row(0, named=True)
    st = new_state(equity, ts_ms)
    st[S_STATE], st[S_PEAK], st[S_DAY], st[S_DAY_START] = STATE_NAMES.index(r["state"]), r["peak"], r["day"], r["day_start"]
    st[S_HALTED_AT], st[S_CANDLES] = r["halted_at"], r["marks"]
    st[S_LAST] = r["equity"]
    return st


def _row(account: str, st: np.ndarray, equity: float, rule: str | None, reason: str | None) -> dict:
    return {
        "account": account, "state": STATE_NAMES[int(st[S_STATE])], "rule": rule, "reason": reason,
        "peak": float(st[S_PEAK]), "day": int(st[S_DAY]), "day_start": float(st[S_DAY_START]),
        "halted_at": float(st[S_HALTED_AT]), "marks": float(st[S_CANDLES]), "equity": float(equity),
        "updated_at": datetime.now(timezone.utc),
    }  # fmt: skip


def _store(wh: Warehouse, account: str, st: np.ndarray, equity: float, events: list[dict],
           rule: str | None, reason: str | None) -> None:  # fmt: skip
    """State and events in one transaction: a crash never stores one without the other."""
    with wh.transaction() as con:
        prev = con.execute("SELECT rule, reason FROM risk.state WHERE account = ?", [account]).fetchall()
        if prev and rule is None:
            rule, reason = prev[0]
        con.execute("DELETE FROM risk.state WHERE account = ?", [account])
        Warehouse.insert(con, "risk.state", [_row(account, st, equity, rule, reason)])
        for e in events:
            con.execute("DELETE FROM risk.events WHERE account = ? AND ts = ? AND state = ? AND rule = ?",
                        [e["account"], e["ts"], e["state"], e["rule"]])  # fmt: skip
            Warehouse.insert(con, "risk.events", [e])


def mark(wh: Warehouse, account: str, rules: RiskRules, equity: float, ts_ms: int, *,
         reasons: dict[int, str] | None = None, webhook_env: str = WEBHOOK_ENV) -> RiskMark:  # fmt: skip
    """Feed one equity mark (open P&L included) to ``account``'s stored state; store and alert
    what changed. ``reasons`` words an event code (default: the rule's name)."""
    st = load(wh, account, equity, ts_ms)
    codes = [c for c in update_state(st, rules.params(), float(equity), int(ts_ms)) if c]
    events, out = [], []
    for code in codes:
        rule = EVENT_RULES[code]
        reason = (reasons or {}).get(code) or event_reason(code, rules)
        state = STATE_NAMES[int(st[S_STATE])] if code == codes[-1] else "active"
        events.append({"account": account, "ts": _utc(ts_ms), "state": state, "rule": rule, "reason": reason,
                       "equity": float(equity)})  # fmt: skip
        out.append((state, rule, reason))
    last_rule, last_reason = (out[-1][1], out[-1][2]) if out else (None, None)
    _store(wh, account, st, equity, events, last_rule, last_reason)
    for state, rule, reason in out:
        send_alert(f"risk {account}: {state} ({rule}: {reason}) at equity {equity:,.2f}", event="risk",
                   context={"account": account, "rule": rule}, webhook_env=webhook_env)  # fmt: skip
    return RiskMark(STATE_NAMES[int(st[S_STATE])], out, st)


def state_of(wh: Warehouse, account: str) -> dict | None:
    """The stored ``risk.state`` row of ``account`` (None if it was never marked)."""
    rows = wh.query("SELECT * FROM risk.state WHERE account = ?", [account])
    return rows.row(0, named=True) if rows.height else None


def _manual(wh: Warehouse, account: str, to: int, code: int, reason: str, webhook_env: str) -> None:
    row = state_of(wh, account)
    if row is None:
        raise ConfigurationError(f"risk account {account!r} has no stored state (it was never marked)")
    now = datetime.now(timezone.utc)
    ms = int(now.timestamp() * 1000)
    st = load(wh, account, row["equity"], ms)
    st[S_STATE] = to
    if to == HALTED:
        st[S_HALTED_AT] = st[S_CANDLES]
    else:  # re-armed from the last mark, or the drawdown that halted it would trip it again at once
        st[S_PEAK], st[S_DAY_START] = row["equity"], row["equity"]
    state = STATE_NAMES[to]
    event = {"account": account, "ts": now, "state": state, "rule": EVENT_RULES[code], "reason": reason,
             "equity": float(row["equity"])}  # fmt: skip
    _store(wh, account, st, row["equity"], [event], EVENT_RULES[code], reason)
    send_alert(f"risk {account}: {state} by hand ({reason})", event="risk", context={"account": account, "rule": "manual"},
               webhook_env=webhook_env)  # fmt: skip


def halt(wh: Warehouse, account: str, reason: str = "halted by hand", *, webhook_env: str = WEBHOOK_ENV) -> None:
    """Halt ``account`` now: its next cycle flattens (or freezes) and adds no risk until resumed."""
    _manual(wh, account, HALTED, EV_MANUAL_HALT, reason, webhook_env)


def resume(wh: Warehouse, account: str, reason: str = "resumed by hand", *, webhook_env: str = WEBHOOK_ENV) -> None:
    """Lift a halt or a reduction of ``account`` by hand (the peak re-armed at its last equity)."""
    _manual(wh, account, ACTIVE, EV_MANUAL_RESUME, reason, webhook_env)


def main(argv: list[str] | None = None) -> int:
    """``python -m quantdag.portfolio.risk_store status | halt ACCOUNT | resume ACCOUNT [--reason TEXT]``."""
    import argparse

    from quantdag.config import load_config

    p = argparse.ArgumentParser(prog="python -m quantdag.portfolio.risk_store", description="Risk state of the accounts.")
    p.add_argument("action", choices=("status", "halt", "resume"))
    p.add_argument("account", nargs="?", help="e.g. portfolio:research or paper:<parameter set>")
    p.add_argument("--reason", default=None)
    args = p.parse_args(argv)
    wh = Warehouse(load_config().data_path / "quantdag.duckdb")
    if args.action == "status":
        rows = wh.query("SELECT account, state, rule, reason, equity, peak, updated_at FROM risk.state ORDER BY account")
        for r in rows.iter_rows(named=True):
            print(f"{r['account']:<40} {r['state']:<9} equity {r['equity']:>12,.2f} peak {r['peak']:>12,.2f}  "
                  f"{r['rule'] or ''} {r['reason'] or ''}")
        return 0
    if not args.account:
        p.error(f"{args.action} needs an ACCOUNT")
    try:
        (halt if args.action == "halt" else resume)(wh, args.account, args.reason or f"{args.action} by hand")
    except ConfigurationError as exc:
        print(f"error: {exc}")
        return 2
    print(f"{args.account}: {args.action} stored; its next cycle acts on it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Write-ahead persistence of orders, fills, positions and balances in the warehouse's ``paper`` schema.

Every write is one DuckDB transaction. A fill, the position it moves and the order it belongs to are
written together, so a crash can never leave a fill without its position change (or the reverse).
Every insert and update names its columns (:meth:`Warehouse.insert` / :meth:`Warehouse.update`): a
positional ``VALUES`` would swap values silently once a table's column order differs from the tuple's.
Only the warehouse's public API is used, so its connection handling stays in one place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import duckdb
import polars as pl

from quantdag.errors import ConfigurationError
from quantdag.execution.lease import DEFAULT_TTL_S, AccountLocked, Lease, new_holder_id
from quantdag.execution.types import (
    Balance,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    positions_from_fills,
)
from quantdag.store import Warehouse, begin

log = logging.getLogger(__name__)

_ORDER_COLS = (
    "client_order_id", "strategy", "symbol", "side", "qty", "type", "price", "status", "exchange_order_id",
    "filled_qty", "avg_price", "fee", "parent_id", "intent", "reason", "broker",
    "ts_created", "ts_submitted", "ts_acked", "ts_updated",
)
_TS_COLS = ("ts_created", "ts_submitted", "ts_acked", "ts_updated")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _order_row(order: Order, broker: str) -> dict[str, Any]:
    """A ``paper.orders`` row keyed by column name."""
    return {
        "client_order_id": order.client_order_id, "strategy": order.strategy, "symbol": order.symbol,
        "side": str(order.side), "qty": order.qty, "type": str(order.type), "price": order.limit_price,
        "status": str(order.status), "exchange_order_id": order.exchange_order_id, "filled_qty": order.filled_qty,
        "avg_price": order.avg_price, "fee": order.fee, "parent_id": order.parent_id, "intent": order.intent,
        "reason": order.reason, "broker": broker, "ts_created": _dt(order.ts_created),
        "ts_submitted": _dt(order.ts_submitted), "ts_acked": _dt(order.ts_acked), "ts_updated": _dt(order.ts_updated),
    }


def _fill_row(fill: Fill, broker: str) -> dict[str, Any]:
    """A ``paper.fills`` row keyed by column name."""
    return {
        "trade_id": fill.trade_id, "client_order_id": fill.client_order_id,
        "exchange_order_id": fill.exchange_order_id, "symbol": fill.symbol, "side": str(fill.side), "qty": fill.qty,
        "price": fill.price, "fee": fill.fee, "fee_asset": fill.fee_asset, "broker": broker, "ts": _dt(fill.ts),
    }


def _position_row(pos: Position, broker: str) -> dict[str, Any]:
    """A ``paper.positions`` row keyed by column name."""
    return {
        "broker": broker, "symbol": pos.symbol, "qty": pos.qty, "avg_price": pos.avg_price,
        "realised_pnl": pos.realised_pnl, "fees": pos.fees, "ts": _dt(pos.ts),
    }


def _balance_row(balance: Balance, broker: str, ts_ms: int) -> dict[str, Any]:
    """A ``paper.balances`` row keyed by column name."""
    return {"broker": broker, "asset": balance.asset, "free": balance.free, "used": balance.used,
            "total": balance.total, "ts": _dt(ts_ms)}


def _order_from(row: dict[str, Any]) -> Order:
    return Order(
        client_order_id=row["client_order_id"], strategy=row["strategy"], symbol=row["symbol"],
        side=Side(row["side"]), qty=row["qty"], type=OrderType(row["type"]), limit_price=row["price"],
        status=OrderStatus(row["status"]), exchange_order_id=row["exchange_order_id"],
        filled_qty=row["filled_qty"], avg_price=row["avg_price"], fee=row["fee"], parent_id=row["parent_id"],
        intent=row["intent"], reason=row["reason"], ts_created=row["ts_created"],
        ts_submitted=row["ts_submitted"], ts_acked=row["ts_acked"], ts_updated=row["ts_updated"],
    )


def _fill_from(row: dict[str, Any]) -> Fill:
    return Fill(
        trade_id=row["trade_id"], client_order_id=row["client_order_id"], symbol=row["symbol"],
        side=Side(row["side"]), qty=row["qty"], price=row["price"], fee=row["fee"], fee_asset=row["fee_asset"],
        ts=row["ts"], exchange_order_id=row["exchange_order_id"],
    )


class OrderStore:
    """The OMS's durable state for one broker account (``broker`` names it in every table).

    Parameters
    ----------
    warehouse:
        The DuckDB file.
    broker:
        Account name, e.g. ``"paper"`` or ``"sim"`` / ``"binance"``.
    hook:
        Called with a step name inside multi-statement writes (crash-injection tests).
    persistent:
        Keep one connection open until :meth:`close` (fast: opening a DuckDB file costs tens of
        milliseconds) - the file is then locked against other processes while the store is open.
        False opens a connection per operation. Every commit is durable either way.
    lease_ttl_s:
        Time to live of the account lease this store takes (:meth:`acquire_lease`) and renews.
    """

    def __init__(self, warehouse: Warehouse, broker: str, *, hook: Callable[[str], None] | None = None,
                 persistent: bool = True, lease_ttl_s: float = DEFAULT_TTL_S) -> None:
        if not lease_ttl_s > 0:
            raise ConfigurationError(f"lease_ttl_s must be positive, got {lease_ttl_s!r}")
        self.wh = warehouse
        self.broker = broker
        self.persistent = persistent
        self.holder = new_holder_id()
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        self._hook = hook or (lambda step: None)
        self._con: Any = None
        self._lock = threading.RLock()
        warehouse.ensure_schema()

    def close(self) -> None:
        """Release the persistent connection (and the file lock)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if not self.persistent:
            with self.wh.connect() as con:
                yield con
            return
        with self._lock:
            if self._con is None:
                self._con = self.wh.open()
            yield self._con

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._connect() as con, begin(con):
            yield con

    def _query(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        with self._connect() as con:
            return con.sql(sql, params=list(params)).pl()

    # ---- orders --------------------------------------------------------------------------------

    def write_ahead(self, order: Order) -> Order:
        """Insert ``order`` unless its client order id is already stored; returns the stored order."""
        return self.claim(order)[0]

    def claim(self, order: Order, *, now_ms: int | None = None) -> tuple[Order, bool]:
        """Insert ``order`` unless its client order id is stored: ``(stored order, whether THIS call inserted it)``.

        The check and the insert are one transaction (DuckDB admits one writing process at a time;
        the primary key catches a concurrent insert in this process), so of any number of managers
        claiming one id exactly one gets True: only that one may send the order. Renews this store's
        account lease when it holds it.

        Raises
        ------
        AccountLocked
            If another live manager holds the account's lease (nothing is written).
        """
        now = _now_ms() if now_ms is None else now_ms
        try:
            with self._transaction() as con:
                self._check_lease(con, now)
                existing = self._get(con, order.client_order_id)
                if existing is not None:
                    return existing, False
                Warehouse.insert(con, "paper.orders", [_order_row(order, self.broker)])
        except (duckdb.ConstraintException, duckdb.TransactionException):
            existing = self.get(order.client_order_id)  # a concurrent claim inserted it first
            if existing is None:
                raise
            return existing, False
        return order, True

    def update_order(self, order: Order) -> None:
        with self._transaction() as con:
            self._update(con, order)

    def _update(self, con: Any, order: Order) -> None:
        row = _order_row(order, self.broker)
        key = {"client_order_id": row.pop("client_order_id")}
        Warehouse.update(con, "paper.orders", row, key)

    def _get(self, con: Any, cid: str) -> Order | None:
        frame = con.sql(self._select() + " WHERE client_order_id = ?", params=[cid]).pl()
        return _order_from(frame.row(0, named=True)) if frame.height else None

    def _select(self) -> str:
        cols = [f"epoch_ms({c}) AS {c}" if c in _TS_COLS else c for c in _ORDER_COLS]
        return f"SELECT {', '.join(cols)} FROM paper.orders"

    def get(self, cid: str) -> Order | None:
        with self._connect() as con:
            return self._get(con, cid)

    def orders(self, statuses: Iterable[OrderStatus] | None = None, *, strategy: str | None = None) -> list[Order]:
        sql, params = self._select() + " WHERE broker = ?", [self.broker]
        if statuses is not None:
            names = [str(s) for s in statuses]
            sql += f" AND status IN ({', '.join('?' * len(names))})"
            params += names
        if strategy is not None:
            sql += " AND strategy = ?"
            params.append(strategy)
        frame = self._query(sql + " ORDER BY ts_created, client_order_id", params)
        return [_order_from(r) for r in frame.iter_rows(named=True)]

    def orders_frame(self) -> pl.DataFrame:
        return self._query("SELECT * FROM paper.orders WHERE broker = ? ORDER BY ts_created", [self.broker])

    # ---- fills and positions -------------------------------------------------------------------

    def record(self, order: Order | None, fills: Sequence[Fill]) -> list[Fill]:
        """Store new ``fills`` (known trade ids are skipped), move the positions and update ``order``.

        One transaction; returns the fills that were new.
        """
        with self._transaction() as con:
            known = {
                (r[0], r[1])
                for r in con.execute("SELECT symbol, trade_id FROM paper.fills WHERE broker = ?", [self.broker]).fetchall()
            }
            new = [f for f in fills if (f.symbol, f.trade_id) not in known]
            seen: set[tuple[str, str]] = set()
            new = [f for f in new if not ((f.symbol, f.trade_id) in seen or seen.add((f.symbol, f.trade_id)))]
            Warehouse.insert(con, "paper.fills", [_fill_row(f, self.broker) for f in new])
            if new:
                self._hook("fills_inserted")  # inside the transaction: a crash here rolls everything back
            for symbol in sorted({f.symbol for f in new}):
                pos = self._position(con, symbol)
                for f in sorted((f for f in new if f.symbol == symbol), key=lambda f: (f.ts, f.trade_id)):
                    pos = pos.apply(f)
                con.execute("DELETE FROM paper.positions WHERE broker = ? AND symbol = ?", [self.broker, symbol])
                Warehouse.insert(con, "paper.positions", [_position_row(pos, self.broker)])
            if order is not None:
                self._update(con, order)
        return new

    def _position(self, con: Any, symbol: str) -> Position:
        row = con.execute(
            "SELECT qty, avg_price, realised_pnl, fees, epoch_ms(ts) FROM paper.positions WHERE broker = ? AND symbol = ?",
            [self.broker, symbol],
        ).fetchone()
        return Position(symbol) if row is None else Position(symbol, row[0], row[1], row[2], row[3], row[4])

    def fills(self, *, client_order_id: str | None = None, symbol: str | None = None) -> list[Fill]:
        sql = ("SELECT trade_id, client_order_id, exchange_order_id, symbol, side, qty, price, fee, fee_asset, "
               "epoch_ms(ts) AS ts FROM paper.fills WHERE broker = ?")
        params: list[Any] = [self.broker]
        if client_order_id is not None:
            sql += " AND client_order_id = ?"
            params.append(client_order_id)
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        frame = self._query(sql + " ORDER BY ts, trade_id", params)
        return [_fill_from(r) for r in frame.iter_rows(named=True)]

    def last_fill_ms(self, symbol: str) -> int | None:
        frame = self._query("SELECT max(epoch_ms(ts)) AS t FROM paper.fills WHERE broker = ? AND symbol = ?",
                              [self.broker, symbol])
        return frame["t"][0]

    def positions(self) -> dict[str, Position]:
        frame = self._query(
            "SELECT symbol, qty, avg_price, realised_pnl, fees, epoch_ms(ts) AS ts FROM paper.positions WHERE broker = ?",
            [self.broker],
        )
        return {r["symbol"]: Position(**r) for r in frame.iter_rows(named=True)}

    def rebuild_positions(self) -> dict[str, Position]:
        """Recompute every position from the fill ledger (reconciliation); returns them."""
        positions = positions_from_fills(self.fills())
        with self._transaction() as con:
            con.execute("DELETE FROM paper.positions WHERE broker = ?", [self.broker])
            Warehouse.insert(con, "paper.positions", [_position_row(p, self.broker) for p in positions.values()])
        return positions

    def record_foreign(self, fills: Sequence[Fill], now_ms: int) -> list[Fill]:
        """Store fills of orders this manager never sent in ``paper.foreign_fills`` (never in the
        ledger); one transaction; returns those not seen before (known trade ids are skipped)."""
        with self._transaction() as con:
            known = {(r[0], r[1]) for r in con.execute(
                "SELECT symbol, trade_id FROM paper.foreign_fills WHERE broker = ?", [self.broker]).fetchall()}
            new: list[Fill] = []
            for f in fills:
                if (f.symbol, f.trade_id) not in known:
                    known.add((f.symbol, f.trade_id))
                    new.append(f)
            Warehouse.insert(con, "paper.foreign_fills",
                             [{**_fill_row(f, self.broker), "ts_seen": _dt(now_ms)}
                              for f in new])
        return new

    def foreign_fills(self) -> list[Fill]:
        frame = self._query(
            "SELECT trade_id, client_order_id, exchange_order_id, symbol, side, qty, price, fee, fee_asset, "
            "epoch_ms(ts) AS ts FROM paper.foreign_fills WHERE broker = ? ORDER BY ts, trade_id", [self.broker])
        return [_fill_from(r) for r in frame.iter_rows(named=True)]

    def note_not_found(self, client_order_id: str, now_ms: int) -> tuple[int, int]:
        """Count one more "not found" answer for an order; one transaction. Returns ``(answers so
        far, ms of the first)``."""
        with self._transaction() as con:
            row = con.execute("SELECT answers, epoch_ms(first_at) FROM paper.not_found WHERE broker = ? "
                              "AND client_order_id = ?", [self.broker, client_order_id]).fetchone()
            if row is None:
                Warehouse.insert(con, "paper.not_found", [{
                    "broker": self.broker, "client_order_id": client_order_id, "answers": 1,
                    "first_at": _dt(now_ms), "last_at": _dt(now_ms)}])
                return 1, now_ms
            Warehouse.update(con, "paper.not_found", {"answers": row[0] + 1, "last_at": _dt(now_ms)},
                             {"broker": self.broker, "client_order_id": client_order_id})
            return row[0] + 1, row[1]

    def not_found(self, client_order_id: str) -> tuple[int, int] | None:
        """``(answers, ms of the first)`` of the "not found" answers counted for an order, if any."""
        frame = self._query("SELECT answers, epoch_ms(first_at) AS f FROM paper.not_found WHERE broker = ? "
                            "AND client_order_id = ?", [self.broker, client_order_id])
        return (frame["answers"][0], frame["f"][0]) if frame.height else None

    def save_tca(self, rows: list[Any]) -> None:
        from quantdag.execution.tca import write_tca

        with self._transaction() as con:
            write_tca(con, rows)

    # ---- the account lease --------------------------------------------------------------------

    def _lease(self, con: Any) -> Lease | None:
        row = con.execute("SELECT holder, epoch_ms(acquired_at), epoch_ms(expires_at) FROM paper.leases "
                          "WHERE account = ?", [self.broker]).fetchone()
        return None if row is None else Lease(self.broker, row[0], row[1], row[2])

    def _check_lease(self, con: Any, now_ms: int) -> None:
        """Raise :class:`AccountLocked` if another live manager holds the lease; renew it if this store does."""
        lease = self._lease(con)
        if lease is None:
            return
        if lease.holder != self.holder:
            if lease.live(now_ms):
                raise AccountLocked(self.broker, lease.holder, lease.expires_ms)
            return
        Warehouse.update(con, "paper.leases", {"expires_at": _dt(now_ms + self.lease_ttl_ms)},
                         {"account": self.broker, "holder": self.holder})

    def lease(self) -> Lease | None:
        """The account's lease row, whoever holds it (possibly expired)."""
        with self._connect() as con:
            return self._lease(con)

    def check_lease(self, now_ms: int | None = None) -> None:
        """Raise :class:`AccountLocked` if another live manager holds the account; renew the lease if this store holds it."""
        with self._transaction() as con:
            self._check_lease(con, _now_ms() if now_ms is None else now_ms)

    def acquire_lease(self, now_ms: int | None = None) -> Lease:
        """Take the account's lease, or renew it if this store holds it; one transaction.

        A lease that expired, or whose holder is a dead process of this host, is taken over.

        Raises
        ------
        AccountLocked
            If another live manager holds it.
        """
        now = _now_ms() if now_ms is None else now_ms
        try:
            with self._transaction() as con:
                cur = self._lease(con)
                if cur is not None and cur.holder != self.holder and cur.live(now):
                    raise AccountLocked(self.broker, cur.holder, cur.expires_ms)
                mine = cur is not None and cur.holder == self.holder
                new = Lease(self.broker, self.holder, cur.acquired_ms if mine else now, now + self.lease_ttl_ms)
                row = {"holder": new.holder, "acquired_at": _dt(new.acquired_ms), "expires_at": _dt(new.expires_ms)}
                if cur is None:
                    Warehouse.insert(con, "paper.leases", [{"account": self.broker, **row}])
                else:
                    Warehouse.update(con, "paper.leases", row, {"account": self.broker, "holder": cur.holder})
        except (duckdb.ConstraintException, duckdb.TransactionException):
            cur = self.lease()  # a concurrent acquirer won
            if cur is None or cur.holder == self.holder:
                raise
            raise AccountLocked(self.broker, cur.holder, cur.expires_ms) from None
        if cur is not None and not mine:
            log.warning("account %s: took over the lease of %s (expired or dead)", self.broker, cur.holder)
        return new

    def release_lease(self) -> bool:
        """Give up the account's lease if this store holds it; returns whether it did."""
        with self._transaction() as con:
            row = con.execute("DELETE FROM paper.leases WHERE account = ? AND holder = ?",
                              [self.broker, self.holder]).fetchone()
        return bool(row and row[0])

    # ---- balances ------------------------------------------------------------------------------

    def save_balances(self, balances: Iterable[Balance], ts_ms: int) -> None:
        with self._transaction() as con:
            con.execute("DELETE FROM paper.balances WHERE broker = ?", [self.broker])
            Warehouse.insert(con, "paper.balances", [_balance_row(b, self.broker, ts_ms) for b in balances])

    def balance_baseline(self) -> dict[str, float] | None:
        """Per asset, what the account held beyond its ledger when first reconciled (None: never set)."""
        frame = self._query("SELECT asset, qty FROM paper.balance_baseline WHERE broker = ?", [self.broker])
        return {r["asset"]: r["qty"] for r in frame.iter_rows(named=True)} if frame.height else None

    def set_balance_baseline(self, baseline: dict[str, float], ts_ms: int) -> dict[str, float]:
        """Store ``baseline`` unless one is stored (one transaction); returns the stored one."""
        with self._transaction() as con:
            rows = con.execute("SELECT asset, qty FROM paper.balance_baseline WHERE broker = ?",
                               [self.broker]).fetchall()
            if rows:
                return {a: q for a, q in rows}
            Warehouse.insert(con, "paper.balance_baseline",
                             [{"broker": self.broker, "asset": a, "qty": q, "ts": _dt(ts_ms)}
                              for a, q in sorted(baseline.items())])
        return dict(baseline)

    def balances(self) -> dict[str, Balance]:
        frame = self._query("SELECT asset, free, used, total FROM paper.balances WHERE broker = ?", [self.broker])
        return {r["asset"]: Balance(**r) for r in frame.iter_rows(named=True)}

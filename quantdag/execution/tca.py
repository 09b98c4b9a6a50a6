"""Transaction-cost analysis per parent order, stored in ``paper.tca``.

Signs are costs: positive means the execution cost us. With ``s = +1`` for a buy and ``-1`` for a sell:

- implementation shortfall (bps) = ``s * (avg_fill - arrival) / arrival * 1e4``
- slippage vs interval VWAP (bps) = ``s * (avg_fill - vwap) / vwap * 1e4``
- shortfall cost (quote) = ``s * (avg_fill - arrival) * filled_qty + fees``
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import polars as pl

from quantdag.execution.types import Fill, Side
from quantdag.store import Warehouse


@dataclass(frozen=True)
class Tca:
    parent_id: str
    strategy: str
    symbol: str
    side: str
    algo: str
    parent_qty: float
    filled_qty: float
    n_children: int
    n_fills: int
    arrival_price: float
    avg_fill_price: float | None
    interval_vwap: float | None
    implementation_shortfall_bps: float | None
    slippage_vs_vwap_bps: float | None
    fees: float
    shortfall_cost: float | None
    ts_start: int
    ts_end: int


def interval_vwap(candles: pl.DataFrame) -> float | None:
    """Volume-weighted typical price ((h+l+c)/3) of the candles covering the execution interval."""
    if candles.height == 0 or candles["volume"].sum() <= 0:
        return None
    typical = (candles["high"] + candles["low"] + candles["close"]) / 3
    return float((typical * candles["volume"]).sum() / candles["volume"].sum())


def analyse(*, parent_id: str, strategy: str, symbol: str, side: Side | str, algo: str, parent_qty: float,
            arrival_price: float, fills: list[Fill], n_children: int, vwap: float | None,
            ts_start: int, ts_end: int) -> Tca:
    s = Side(side).sign
    filled = sum(f.qty for f in fills)
    fees = sum(f.fee if f.fee_asset != symbol.split("/")[0] else f.fee * f.price for f in fills)
    avg = sum(f.qty * f.price for f in fills) / filled if filled > 0 else None
    return Tca(
        parent_id, strategy, symbol, str(Side(side)), algo, parent_qty, filled, n_children, len(fills),
        arrival_price, avg, vwap,
        s * (avg - arrival_price) / arrival_price * 1e4 if avg is not None else None,
        s * (avg - vwap) / vwap * 1e4 if avg is not None and vwap else None,
        fees,
        s * (avg - arrival_price) * filled + fees if avg is not None else None,
        ts_start, ts_end,
    )


def store_tca(wh: Warehouse, rows: list[Tca]) -> None:
    """Upsert TCA rows (by ``parent_id``)."""
    with wh.transaction() as con:
        write_tca(con, rows)


def write_tca(con: Any, rows: list[Tca]) -> None:
    """Upsert TCA rows on an open connection (inside the caller's transaction).

    Inserted by column name (:meth:`Warehouse.insert`), so ``paper.tca``'s column order never matters.
    """
    for r in rows:
        d: dict[str, Any] = asdict(r)
        d["ts_start"] = datetime.fromtimestamp(r.ts_start / 1000, tz=timezone.utc)
        d["ts_end"] = datetime.fromtimestamp(r.ts_end / 1000, tz=timezone.utc)
        con.execute("DELETE FROM paper.tca WHERE parent_id = ?", [r.parent_id])
        Warehouse.insert(con, "paper.tca", [d])


def summarise(wh: Warehouse) -> pl.DataFrame:
    """Per strategy, symbol and algo: parents, filled qty, qty-weighted shortfall and VWAP slippage, fees."""
    return wh.query("""
        SELECT strategy, symbol, algo, count(*) AS parents, sum(filled_qty) AS filled_qty,
               sum(implementation_shortfall_bps * filled_qty) / nullif(sum(filled_qty), 0) AS shortfall_bps,
               sum(slippage_vs_vwap_bps * filled_qty) / nullif(sum(filled_qty), 0) AS vwap_slippage_bps,
               sum(fees) AS fees, sum(shortfall_cost) AS shortfall_cost
        FROM paper.tca GROUP BY ALL ORDER BY ALL
    """)

"""Backtest-paper drift: does the paper account trade the way the backtest says it would?

Every paper fill of a rebalance decision (intent ``rebalance:<decision_ts_ms>``) is set beside
the price the backtest engine fills the same decision at: the open of the candle after the
signal candle. The difference, signed so that positive means the paper account paid more (or
received less), is stored in ``paper.drift``; beyond the tolerance the fill is 'diverged'.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import polars as pl

from quantdag.marketdata import Market
from quantdag.research import strategy_from_key
from quantdag.store import Slice, Warehouse
from quantdag.timeframes import timeframe_ms

DEFAULT_TOLERANCE_BPS = 50.0


def paper_drift(
    wh: Warehouse, key: str, markets: Sequence[Market], *, tolerance_bps: float = DEFAULT_TOLERANCE_BPS
) -> pl.DataFrame:
    """Compare parameter set ``key``'s paper fills with the backtest's fills; replace its ``paper.drift`` rows."""
    strategy = strategy_from_key(key)
    broker = f"paper:{strategy.key}"
    fills = wh.query(
        "SELECT o.client_order_id, o.symbol, o.side, o.intent, o.avg_price AS paper_price "
        "FROM paper.orders o WHERE o.broker = ? AND o.intent LIKE 'rebalance:%' AND o.filled_qty > 0 "
        "ORDER BY o.client_order_id",
        [broker],
    )
    rows = []
    by_symbol = {m.symbol: m for m in markets}
    for f in fills.iter_rows(named=True):
        m = by_symbol.get(f["symbol"])
        if m is None:
            continue
        decision_ms = int(f["intent"].split(":", 1)[1])
        next_open = decision_ms + timeframe_ms(m.timeframe)
        candle = wh.read(
            "market.candles", [Slice(where=m.where, start=next_open, end=next_open + 1)]
        )
        ref = float(candle["open"][0]) if candle.height else None
        sign = 1.0 if f["side"] == "buy" else -1.0
        drift = None if ref is None else sign * (f["paper_price"] - ref) / ref * 1e4
        status = "pending" if drift is None else ("ok" if abs(drift) <= tolerance_bps else "diverged")
        rows.append({
            "broker": broker, "client_order_id": f["client_order_id"], "symbol": f["symbol"], "side": f["side"],
            "decision_ts": datetime.fromtimestamp(decision_ms / 1000, tz=timezone.utc),
            "paper_price": float(f["paper_price"]), "backtest_price": ref, "drift_bps": drift,
            "tolerance_bps": float(tolerance_bps), "status": status,
        })  # fmt: skip
    schema = {
        "broker": pl.Utf8, "client_order_id": pl.Utf8, "symbol": pl.Utf8, "side": pl.Utf8,
        "decision_ts": pl.Datetime("ms", "UTC"), "paper_price": pl.Float64, "backtest_price": pl.Float64,
        "drift_bps": pl.Float64, "tolerance_bps": pl.Float64, "status": pl.Utf8,
    }  # fmt: skip
    out = pl.DataFrame(rows, schema=schema)
    wh.replace_slices("paper.drift", out, [Slice(where={"broker": broker}, time_column=None)], order_by=("client_order_id",))
    return out

"""Plain-Python references of the portfolio engine's rules (the oracles) and the random markets they run on.

Loops over candles, strategies and markets, dicts, no numba and no vectorised rule: slow and
obviously right, so the numba kernel is checked against them rather than against itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_STRATEGY = "portfolio"
DUST = 1e-12  # a buy cash scales below this share of the portfolio's value is no fill


def _market(rng, symbols, n, holes=0.0):
    """Hourly random-walk candles of ``symbols`` from T0; ``holes``: chance that a candle is missing."""
    rows = []
    for s in symbols:
        px = 100.0 * rng.uniform(0.5, 2)
        for t in range(n):
            o = px
            px = px * math.exp(rng.normal(0, 0.02))
            if rng.random() < holes:
                continue
            rows.append({"ts": T0 + timedelta(hours=t), "symbol": s, "open": o, "high": max(o, px) * 1.01,
                         "low": min(o, px) * 0.99, "close": px, "volume": 1.0})  # fmt: skip
    return pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def _weights(rng, candles, every=0.2, short=False):
    """Weight rows at a random ``every`` share of the candles, in [0, 0.6) (or [-0.6, 0.6) with ``short``)."""
    pick = candles.filter(pl.Series(rng.random(candles.height) < every))
    lo = -0.6 if short else 0.0
    return pick.select("ts", "symbol").with_columns(weight=pl.Series(rng.uniform(lo, 0.6, pick.height)))


def reference(candles, weights, fee, slippage, init_cash, min_notional=0.0):
    """The rules of quantdag.portfolio.engine, one candle and one market at a time, in plain Python."""
    times = sorted(set(candles["ts"].to_list()))
    symbols = sorted(set(candles["symbol"].to_list()))
    bars = {(r["ts"], r["symbol"]): r for r in candles.iter_rows(named=True)}
    targets = {(r["ts"], r["symbol"]): r["weight"] for r in weights.iter_rows(named=True)}
    units = dict.fromkeys(symbols, 0.0)
    last: dict[str, float] = {}
    pending: dict[str, float] = {}
    cash, curve, fills, cut = init_cash, [], [], 0
    for t in times:
        ready = {s: pending[s] for s in sorted(pending) if (t, s) in bars}  # markets in symbol order
        if ready:
            value = cash + sum(u * (bars[(t, s)]["open"] if (t, s) in bars else last[s]) for s, u in units.items() if u)
            orders = {}
            for s, w in ready.items():
                del pending[s]
                d = w * value / bars[(t, s)]["open"] - units[s]
                if d != 0 and abs(d) * bars[(t, s)]["open"] >= min_notional:
                    orders[s] = d
            for s, d in orders.items():
                if d < 0:
                    px = bars[(t, s)]["open"] * (1 - slippage)
                    cash += -d * px * (1 - fee)
                    units[s] += d
                    fills.append((t, s, d))
            need = sum(d * bars[(t, s)]["open"] * (1 + slippage) * (1 + fee) for s, d in orders.items() if d > 0)
            scale = min(1.0, max(cash, 0.0) / need) if need > 0 else 1.0
            for s, d in orders.items():
                if d > 0:
                    if scale < 1:
                        d, cut = d * scale, cut + 1
                        if d * bars[(t, s)]["open"] < max(min_notional, 1e-12 * abs(value)):
                            continue  # scaled to nothing: counted, not filled
                    px = bars[(t, s)]["open"] * (1 + slippage)
                    cash -= d * px * (1 + fee)
                    units[s] += d
                    fills.append((t, s, d))
        for s in symbols:
            if (t, s) in bars:
                last[s] = bars[(t, s)]["close"]
            if (t, s) in targets:
                pending[s] = targets[(t, s)]
        curve.append(cash + sum(u * last[s] for s, u in units.items() if u))
    return curve, fills, cut


@dataclass
class Ledgers:
    """What :func:`reference_portfolio` returns."""

    curve: list[float] = field(default_factory=list)  # account equity at each close
    fills: list[tuple] = field(default_factory=list)  # (ts, symbol, qty) in the order they fill
    strategy_curves: dict[str, list[float]] = field(default_factory=dict)  # each sub-ledger's equity at each close
    attribution: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (strategy, symbol) -> P&L
    counts: dict[str, int] = field(default_factory=dict)


def reference_portfolio(candles, weights, *, fee, slippage, init_cash, shares=None, min_notional=0.0,
                        turnover_cap=None):  # fmt: skip
    """The multi-strategy rules with ``rebalance="signal"`` and no risk rule, in plain Python.

    Each strategy s keeps a sub-ledger (cash_s, u_s,i). At an open where targets are pending:
    E_s = cash_s + sum_i u_s,i x price_i; each pending target wishes d_s,i = w x E_s / open_i - u_s,i;
    the account orders D_i = sum_s d_s,i; an order under ``min_notional`` is skipped; if the orders'
    notional exceeds ``turnover_cap`` x value, every order is scaled down to it and its targets stay
    pending; sells fill first, then buys, all scaled by one factor if cash is short. Of a market's
    fill q, the strategies wishing the net's way absorb the shortfall D - q in proportion to |d_s|
    (x_s = d_s - (D - q) |d_s| / sum over that side of |d|; the others get their wish: opposite wishes
    cross internally) at the open price, and the fill's fee and slippage are paid by the strategies
    whose part goes the fill's way, in proportion to |x_s| (an internal cross costs nothing).
    """
    times = sorted(set(candles["ts"].to_list()))
    symbols = sorted(set(candles["symbol"].to_list()))
    rows = [{**r, "strategy": r.get("strategy", DEFAULT_STRATEGY)} for r in weights.iter_rows(named=True)]
    strategies = sorted({r["strategy"] for r in rows}) or [DEFAULT_STRATEGY]
    share = shares or {s: 1.0 / len(strategies) for s in strategies}
    bars = {(r["ts"], r["symbol"]): r for r in candles.iter_rows(named=True)}
    new_targets: dict[datetime, list[tuple[str, str, float]]] = {}
    for r in rows:
        new_targets.setdefault(r["ts"], []).append((r["strategy"], r["symbol"], r["weight"]))
    cash = init_cash
    units = dict.fromkeys(symbols, 0.0)
    sub_cash = {s: share[s] * init_cash for s in strategies}
    sub_units = {(s, m): 0.0 for s in strategies for m in symbols}
    flow = dict.fromkeys(sub_units, 0.0)  # cash each strategy paid (-) or got (+) for its units, at open prices
    fees = dict.fromkeys(sub_units, 0.0)
    slips = dict.fromkeys(sub_units, 0.0)
    pending: dict[tuple[str, str], float] = {}
    last: dict[str, float] = {}
    out = Ledgers(strategy_curves={s: [] for s in strategies},
                  counts={"n_cut_for_cash": 0, "n_below_min_notional": 0, "n_turnover_capped": 0, "n_crossed": 0})  # fmt: skip
    for t in times:
        markets = [m for m in symbols if (t, m) in bars and any((s, m) in pending for s in strategies)]
        if markets:
            opens = {m: bars[(t, m)]["open"] for m in markets}
            price = {m: bars[(t, m)]["open"] if (t, m) in bars else last.get(m, math.nan) for m in symbols}
            value = cash + sum(units[m] * price[m] for m in symbols if units[m] != 0)
            equity = {s: sub_cash[s] + sum(sub_units[(s, m)] * price[m] for m in symbols if sub_units[(s, m)] != 0)
                      for s in strategies}  # fmt: skip
            wish = {m: {s: pending[(s, m)] * equity[s] / opens[m] - sub_units[(s, m)]
                        for s in strategies if (s, m) in pending} for m in markets}  # fmt: skip
            wished = {m: sum(wish[m].values()) for m in markets}
            out.counts["n_crossed"] += sum(min(wish[m].values()) < 0 < max(wish[m].values()) for m in markets)
            order = dict(wished)
            for m in markets:
                if order[m] != 0 and abs(order[m]) * opens[m] < min_notional:
                    out.counts["n_below_min_notional"] += 1
                    order[m] = 0.0
            traded = sum(abs(q) * opens[m] for m, q in order.items())
            held = set()  # markets whose targets stay pending for the next candle
            if turnover_cap is not None and value > 0 and traded > turnover_cap * value:
                out.counts["n_turnover_capped"] += 1
                for m in markets:
                    if order[m] != 0:
                        order[m] *= turnover_cap * value / traded
                        held.add(m)
            filled = dict.fromkeys(markets, 0.0)
            paid = dict.fromkeys(markets, 0.0)
            need = sum(q * opens[m] * (1 + slippage) * (1 + fee) for m, q in order.items() if q > 0)
            for m in markets:  # sells first: their proceeds pay for the buys
                q = order[m]
                if q < 0:
                    px = opens[m] * (1 - slippage)
                    paid[m] = -q * px * fee
                    cash += -q * px - paid[m]
                    units[m] += q
                    filled[m] = q
                    out.fills.append((t, m, q))
            scale = max(cash, 0.0) / need if need > 0 and need > cash else 1.0
            for m in markets:
                q = order[m]
                if q > 0:
                    if scale < 1:
                        q *= scale
                        out.counts["n_cut_for_cash"] += 1
                        if q * opens[m] < max(min_notional, DUST * abs(value)):
                            continue  # scaled to nothing: counted, not filled
                    px = opens[m] * (1 + slippage)
                    paid[m] = q * px * fee
                    cash -= q * px + paid[m]
                    units[m] += q
                    filled[m] = q
                    out.fills.append((t, m, q))
            for m in markets:  # the fill (or internal cross) shared back to the strategies
                q = filled[m]
                if m in held and q == 0:
                    continue
                size = sum(abs(d) for d in wish[m].values())
                if size > 0:
                    net = wished[m]
                    side = sum(abs(d) for d in wish[m].values() if d * net > 0)
                    if net != 0 and q * net >= 0 and abs(q) <= abs(net):  # only the net's side absorbs the shortfall
                        part = {s: d - (net - q) * abs(d) / side if d * net > 0 else d for s, d in wish[m].items()}
                    else:
                        part = {s: d - (net - q) * abs(d) / size for s, d in wish[m].items()}
                    total = sum(abs(x) for x in part.values() if x * q > 0)
                    slip_cost = abs(q) * opens[m] * slippage
                    for s, x in part.items():
                        k = abs(x) / total if total > 0 and x * q > 0 else 0.0  # crossed internally: no cost
                        sub_units[(s, m)] += x
                        flow[(s, m)] -= x * opens[m]
                        fees[(s, m)] += paid[m] * k
                        slips[(s, m)] += slip_cost * k
                        sub_cash[s] -= x * opens[m] + (paid[m] + slip_cost) * k
                if m not in held:
                    for s in strategies:
                        pending.pop((s, m), None)
        for m in symbols:
            if (t, m) in bars:
                last[m] = bars[(t, m)]["close"]
        out.curve.append(cash + sum(units[m] * last[m] for m in symbols if units[m] != 0))
        for s in strategies:
            out.strategy_curves[s].append(
                sub_cash[s] + sum(sub_units[(s, m)] * last[m] for m in symbols if sub_units[(s, m)] != 0))
        for s, m, w in new_targets.get(t, []):
            pending[(s, m)] = w
    for key, held_units in sub_units.items():
        mark = held_units * last[key[1]] if key[1] in last else 0.0
        trading = flow[key] + mark
        out.attribution[key] = {"trading_pnl": trading, "fees": fees[key], "slippage": slips[key],
                                "net_pnl": trading - fees[key] - slips[key]}  # fmt: skip
    return out


def strategy_weights(rng, candles, strategies, every=0.2, short=False):
    """Random weight rows (with a strategy column) for each of ``strategies``, independently drawn."""
    parts = [_weights(rng, candles, every, short).with_columns(strategy=pl.lit(s)) for s in strategies]
    return pl.concat(parts).select("ts", "symbol", "strategy", "weight")


def frame(closes, start=T0, step=timedelta(hours=1)):
    """Candles from hand-written closes: {symbol: [close, ...]}, each open the previous close (the first
    open equals the first close); ``None`` = no candle of that symbol then."""
    rows = []
    for sym, series in closes.items():
        prev = next(c for c in series if c is not None)
        for t, c in enumerate(series):
            if c is None:
                continue
            rows.append({"ts": start + t * step, "symbol": sym, "open": prev, "high": max(prev, c), "low": min(prev, c),
                         "close": c, "volume": 1.0})  # fmt: skip
            prev = c
    return pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def weight_rows(rows, start=T0, step=timedelta(hours=1)):
    """Weights from (candle index, symbol, weight[, strategy]) tuples."""
    data = {"ts": [start + r[0] * step for r in rows], "symbol": [r[1] for r in rows],
            "weight": [float(r[2]) for r in rows]}  # fmt: skip
    if rows and len(rows[0]) > 3:
        data["strategy"] = [r[3] for r in rows]
    return pl.DataFrame(data).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def held_weights(result, candles):
    """Per fill candle: {symbol: units x open / portfolio value at that open} right after the fills.

    Units come from the fills, the value at the open from the previous close's cash plus the units
    held before, marked at the open (or the last close where a market has no candle).
    """
    symbols = sorted(set(candles["symbol"].to_list()))
    times = result.equity["ts"].to_list()
    cash = dict(zip(times, result.equity["cash"].to_list()))
    bars = {(r["ts"], r["symbol"]): r for r in candles.iter_rows(named=True)}
    units = dict.fromkeys(symbols, 0.0)
    last: dict[str, float] = {}
    fills: dict[datetime, list[tuple[str, float]]] = {}
    for r in result.trades.iter_rows(named=True):
        fills.setdefault(r["ts"], []).append((r["symbol"], r["qty"]))
    out = {}
    prev_cash = result.settings["init_cash"]
    for t in times:
        if t in fills:
            px = {m: bars[(t, m)]["open"] if (t, m) in bars else last.get(m, math.nan) for m in symbols}
            value = prev_cash + sum(units[m] * px[m] for m in symbols if units[m] != 0)
            for m, q in fills[t]:
                units[m] += q
            out[t] = {m: units[m] * px[m] / value for m in symbols}
            out[t]["_value"] = value
        for m in symbols:
            if (t, m) in bars:
                last[m] = bars[(t, m)]["close"]
        prev_cash = cash[t]
    return out


def expected_shortfall(returns, weights, level):
    """Historical ES of holding ``weights``: minus the mean of the worst (1 - level) share of the
    window's portfolio returns (at least one), as a positive loss fraction."""
    port = sorted(sum(w * r for w, r in zip(weights, row)) for row in returns)
    tail = max(1, math.floor(len(port) * (1 - level) + 1e-9))  # 100 x (1 - 0.9) is 9.999999999999998 in floats
    return max(0.0, -sum(port[:tail]) / tail)


def trailing_returns(candles, symbols, end, window):
    """Simple close-to-close returns of ``symbols`` over the ``window`` candles ending at candle index
    ``end`` (inclusive), from the closes, in plain Python (every market has every candle)."""
    closes = {}
    for r in candles.iter_rows(named=True):
        closes[(r["ts"], r["symbol"])] = r["close"]
    times = sorted({r[0] for r in closes})
    return [[closes[(times[t], s)] / closes[(times[t - 1], s)] - 1 for s in symbols]
            for t in range(max(1, end - window + 1), end + 1)]  # fmt: skip


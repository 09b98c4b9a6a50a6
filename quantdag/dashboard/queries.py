"""What each page shows, read from the warehouse tables (``sql/create_*.sql``; README "Data model").

Each builder takes a :class:`~quantdag.dashboard.reader.Db` and returns plain rows and series; a
missing table gives empty lists, so every page renders an empty state rather than an error.
"""

from __future__ import annotations

import json
from typing import Any

from quantdag.dashboard.reader import Db
from quantdag.markets import Market
from quantdag.stages.paper import paper_overrides
from quantdag.store import load_sql


def _series(rows: list[dict[str, Any]], value: str, ts: str = "ts") -> list[dict[str, Any]]:
    """Rows as a chart's ``{time: epoch s, value}`` points."""
    return [{"time": int(r[ts].timestamp()), "value": r[value]} for r in rows if r[value] is not None]


def overview(db: Db, capital: float) -> dict[str, Any]:
    """Every paper account (equity curve, P&L over its starting ``capital``, positions, open orders, risk
    state) and the last alerts."""
    accounts = db.rows(
        "SELECT broker AS account, arg_min(equity, ts) AS first_equity, arg_max(equity, ts) AS equity, "
        "arg_max(risk_state, ts) AS risk_state, max(ts) AS ts, count(*) AS marks "
        "FROM paper.equity GROUP BY broker ORDER BY broker", needs=("paper.equity",))
    for a in accounts:
        a["pnl"] = a["equity"] - capital
        a["param_set"] = a["account"].removeprefix("paper:") if a["account"].startswith("paper:") else None
        curve = db.rows("SELECT ts, equity FROM paper.equity WHERE broker = ? ORDER BY ts", [a["account"]],
                        needs=("paper.equity",))  # fmt: skip
        a["curve"] = _series(curve, "equity")
    return {
        "accounts": accounts,
        "risk": db.rows("SELECT account, state, rule, reason, equity, peak, updated_at FROM risk.state ORDER BY account",
                        needs=("risk.state",)),  # fmt: skip
        "positions": db.rows("SELECT broker AS account, symbol, qty, avg_price, realised_pnl, fees, ts FROM paper.positions "
                             "WHERE qty <> 0 ORDER BY broker, symbol", needs=("paper.positions",)),  # fmt: skip
        "orders": db.rows(
            "SELECT broker AS account, client_order_id, strategy, symbol, side, qty, type, price, status, filled_qty, ts_updated "
            "FROM paper.orders WHERE status IN ('new', 'submitted', 'partially_filled') ORDER BY ts_updated DESC LIMIT 100",
            needs=("paper.orders",)),
        "fills": db.rows("SELECT broker AS account, symbol, side, qty, price, fee, ts FROM paper.fills ORDER BY ts DESC LIMIT 20",
                         needs=("paper.fills",)),  # fmt: skip
        "alerts": db.rows("SELECT account, ts, state, rule, reason, equity FROM risk.events ORDER BY ts DESC LIMIT 20",
                          needs=("risk.events",)),  # fmt: skip
        "switches": paper_overrides(db.wh) if db.wh is not None and db.has("paper.switches") else {},
    }


def strategies(db: Db, *, min_trades: int) -> dict[str, Any]:
    """The leaderboard (``sql/select_leaderboard.sql``: ranked by Sharpe among runs with enough trades)."""
    rows = db.rows(load_sql("select_leaderboard"), [min_trades], needs=("backtest.runs",))
    return {"leaderboard": rows, "min_trades": min_trades}


_RUN_KEY = "strategy = ? AND params_hash = ? AND exchange = ? AND symbol = ? AND timeframe = ?"


def backtest(db: Db, param_set: str, symbol: str | None = None) -> dict[str, Any]:
    """One parameter set's backtest on one market: metrics, settings, equity, drawdown, candles and trades."""
    runs = db.rows("SELECT * FROM backtest.runs WHERE param_set = ? ORDER BY symbol, timeframe", [param_set],
                   needs=("backtest.runs",))  # fmt: skip
    run = next((r for r in runs if symbol in (None, r["symbol"])), None)
    out: dict[str, Any] = {"param_set": param_set, "runs": runs, "run": run, "equity": [], "drawdown": [],
                           "candles": [], "trades": [], "markers": []}  # fmt: skip
    if run is None:
        return out
    key = [run["strategy"], run["params_hash"], run["exchange"], run["symbol"], run["timeframe"]]
    eq = db.rows(f"SELECT ts, equity, drawdown FROM backtest.equity WHERE {_RUN_KEY} ORDER BY ts", key,
                 needs=("backtest.equity",))  # fmt: skip
    out["equity"], out["drawdown"] = _series(eq, "equity"), _series(eq, "drawdown")
    candles = db.rows("SELECT ts, open, high, low, close FROM market.candles WHERE exchange = ? AND symbol = ? "
                      "AND timeframe = ? AND ts BETWEEN ? AND ? ORDER BY ts",
                      [run["exchange"], run["symbol"], run["timeframe"], run["data_start"], run["data_end"]],
                      needs=("market.candles",))  # fmt: skip
    out["candles"] = [{"time": int(c["ts"].timestamp()), "open": c["open"], "high": c["high"], "low": c["low"],
                       "close": c["close"]} for c in candles]  # fmt: skip
    trades = db.rows(f"SELECT * FROM backtest.trades WHERE {_RUN_KEY} ORDER BY trade_id", key, needs=("backtest.trades",))
    out["trades"] = trades
    markers = []
    for t in trades:
        long = t["side"] == "long"
        markers.append({"time": int(t["entry_ts"].timestamp()), "position": "belowBar" if long else "aboveBar",
                        "color": "#2e7d32" if long else "#c62828", "shape": "arrowUp" if long else "arrowDown",
                        "text": f"{t['side']} #{t['trade_id']}"})  # fmt: skip
        if not t["is_open"]:
            markers.append({"time": int(t["exit_ts"].timestamp()), "position": "aboveBar" if long else "belowBar",
                            "color": "#555", "shape": "circle", "text": f"exit {t['exit_reason']}"})  # fmt: skip
    out["markers"] = sorted(markers, key=lambda m: m["time"])
    run["settings_pretty"] = json.dumps(json.loads(run["settings"]), indent=1, sort_keys=True) if run["settings"] else ""
    run["params_pretty"] = json.dumps(json.loads(run["params"]), sort_keys=True) if run["params"] else ""
    return out


def compare(db: Db, param_sets: list[str]) -> dict[str, Any]:
    """Runs side by side: one row per metric, one column per (parameter set, market)."""
    if not param_sets:
        return {"runs": [], "metrics": []}
    marks = ", ".join("?" for _ in param_sets)
    runs = db.rows(f"SELECT * FROM backtest.runs WHERE param_set IN ({marks}) ORDER BY param_set, symbol", param_sets,
                   needs=("backtest.runs",))  # fmt: skip
    metrics = ["total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "n_trades", "win_rate",
               "profit_factor", "fees_paid", "final_equity", "n_candles"]  # fmt: skip
    return {"runs": runs, "metrics": metrics}


def sweeps(db: Db) -> dict[str, Any]:
    """Each sweep's best, deflated Sharpe, PBO and promotion, with its results as a heatmap grid."""
    rows = db.rows("SELECT * FROM optimize.sweeps ORDER BY strategy, symbol", needs=("optimize.sweeps",))
    promoted = {r["param_set"] for r in db.rows("SELECT param_set FROM signals.param_sets", needs=("signals.param_sets",))}
    for s in rows:
        s["promoted"] = s["best_param_set"] in promoted
        res = db.rows("SELECT params, objective, n_trades FROM optimize.results WHERE strategy = ? AND exchange = ? "
                      "AND symbol = ? AND timeframe = ?", [s["strategy"], s["exchange"], s["symbol"], s["timeframe"]],
                      needs=("optimize.results",))  # fmt: skip
        s["n_results"] = len(res)
        s["heatmap"] = heatmap(res)
    return {"sweeps": rows}


def heatmap(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The objective over two varying parameters (the best value kept where the others vary too)."""
    cells: dict[tuple[Any, Any], float] = {}
    parsed = [(json.loads(r["params"]), r["objective"]) for r in results if r["objective"] is not None]
    values: dict[str, set] = {}
    for p, _ in parsed:
        for k, v in p.items():
            values.setdefault(k, set()).add(json.dumps(v))
    # the two parameters that vary, numeric ones first (a grid of numbers reads as a landscape)
    varying = [k for k, vs in values.items() if len(vs) > 1]
    names = sorted(varying, key=lambda k: (not all(isinstance(p.get(k), (int, float)) for p, _ in parsed), k))[:2]
    if len(names) < 2:
        return None
    for p, objective in parsed:
        k = (p.get(names[0]), p.get(names[1]))
        cells[k] = max(cells.get(k, float("-inf")), objective)
    if not cells:
        return None
    xs, ys = sorted({k[0] for k in cells}, key=_order), sorted({k[1] for k in cells}, key=_order)
    lo, hi = min(cells.values()), max(cells.values())
    grid = [[_cell(cells.get((x, y)), lo, hi) for x in xs] for y in ys]
    return {"x": names[0], "y": names[1], "xs": xs, "ys": ys, "grid": grid}


def _order(v: Any) -> tuple:
    """Numbers in numeric order before anything else in text order."""
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    return (0, v, "") if number else (1, 0, json.dumps(v))


def _cell(v: float | None, lo: float, hi: float) -> dict[str, Any]:
    if v is None:
        return {"v": None, "bg": "#eee"}
    f = 0.5 if hi == lo else (v - lo) / (hi - lo)
    return {"v": v, "bg": f"hsl({int(f * 120)}, 60%, 75%)"}


def portfolio(db: Db) -> dict[str, Any]:
    """Portfolio runs, equity, latest weights, attribution, drift and the risk tables."""
    runs = db.rows("SELECT * FROM portfolio.runs ORDER BY portfolio", needs=("portfolio.runs",))
    for r in runs:
        eq = db.rows("SELECT ts, equity FROM portfolio.equity WHERE portfolio = ? ORDER BY ts", [r["portfolio"]],
                     needs=("portfolio.equity",))  # fmt: skip
        r["curve"] = _series(eq, "equity")
    return {
        "runs": runs,
        "exposure": db.rows("SELECT portfolio, arg_max(equity, ts) AS equity, arg_max(cash, ts) AS cash, "
                            "arg_max(gross_exposure, ts) AS gross, arg_max(net_exposure, ts) AS net, max(ts) AS ts "
                            "FROM portfolio.equity GROUP BY portfolio ORDER BY portfolio", needs=("portfolio.equity",)),
        "weights": db.rows("SELECT w.portfolio, w.strategy AS param_set, w.symbol, w.weight, w.ts FROM portfolio.weights w "
                           "QUALIFY row_number() OVER (PARTITION BY portfolio, strategy, symbol ORDER BY ts DESC) = 1 "
                           "ORDER BY portfolio, strategy, symbol", needs=("portfolio.weights",)),
        "attribution": db.rows("SELECT portfolio, strategy AS param_set, symbol, trading_pnl, fees, slippage, net_pnl "
                               "FROM portfolio.attribution ORDER BY portfolio, net_pnl DESC", needs=("portfolio.attribution",)),
        "drift": db.rows("SELECT * FROM portfolio.drift ORDER BY portfolio, kind, symbol", needs=("portfolio.drift",)),
        "risk": db.rows("SELECT account, state, rule, reason, equity, peak, updated_at FROM risk.state ORDER BY account",
                        needs=("risk.state",)),  # fmt: skip
        "events": db.rows("SELECT account, ts, state, rule, reason, equity FROM risk.events ORDER BY ts DESC LIMIT 100",
                          needs=("risk.events",)),  # fmt: skip
    }


def market(db: Db, markets: list[Market], stream_symbols: list[str]) -> dict[str, Any]:
    """Freshness per market (the streamer's own measure), gaps, events and stream events on a timeline."""
    from quantdag.stages.stream import freshness

    fresh: list[dict[str, Any]] = []
    if db.wh is not None and db.has("market.candles"):
        for m in markets:
            fresh += freshness(db.wh, [m], timeframe=m.timeframe).to_dicts()
        stream = [m for m in markets if m.symbol in stream_symbols]
        seen = set()
        for m in stream:
            if m.symbol not in seen:
                seen.add(m.symbol)
                fresh += freshness(db.wh, [m], timeframe="1m").to_dicts()
    events = db.rows("SELECT ts_start AS ts, ts_end, symbol, timeframe, event_type AS kind, severity, score, detail "
                     "FROM market.events ORDER BY ts_start DESC LIMIT 200", needs=("market.events",))  # fmt: skip
    stream_events = db.rows("SELECT seen_at AS ts, symbol, channel, kind, count, first_ts, last_ts, detail "
                            "FROM market.stream_events ORDER BY seen_at DESC LIMIT 200", needs=("market.stream_events",))
    gaps = db.rows("SELECT symbol, timeframe, gap_start, gap_end, missing, filled FROM market.gaps "
                   "ORDER BY gap_start DESC LIMIT 200", needs=("market.gaps",))  # fmt: skip
    timeline = sorted([{"ts": e["ts"], "what": f"{e['kind']} ({e['severity']})", "symbol": e["symbol"], "source": "market"}
                       for e in events]
                      + [{"ts": e["ts"], "what": f"stream {e['channel']} {e['kind']}", "symbol": e["symbol"], "source": "stream"}
                         for e in stream_events]
                      + [{"ts": g["gap_start"], "what": f"gap of {g['missing']}{' (filled)' if g['filled'] else ''}",
                          "symbol": g["symbol"], "source": "gaps"} for g in gaps],
                      key=lambda e: e["ts"], reverse=True)[:200]  # fmt: skip
    return {"freshness": fresh, "events": events, "stream_events": stream_events, "gaps": gaps, "timeline": timeline}


def live_marks(db: Db) -> dict[str, str | None]:
    """The newest candle, fill and alert stored: the live feed's change detector (three max() reads)."""
    out: dict[str, str | None] = {}
    for name, sql, table in (("candle", "SELECT max(ts) AS m FROM market.candles", "market.candles"),
                             ("fill", "SELECT max(ts) AS m FROM paper.fills", "paper.fills"),
                             ("alert", "SELECT max(ts) AS m FROM risk.events", "risk.events")):  # fmt: skip
        r = db.one(sql, needs=(table,))
        out[name] = None if r is None or r["m"] is None else r["m"].isoformat()
    return out

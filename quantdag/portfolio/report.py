"""Self-contained HTML tear sheet of one portfolio run: inline SVG and CSS, no script, no network.

Why this shape: the page is an artifact (MLflow, e-mail, a shared drive) that must look the same
anywhere and years later, so nothing is fetched and nothing runs. Every string that comes from data
(symbols, strategy names, risk reasons, settings) is HTML-escaped, because a strategy or market
name is user input and a page that renders it raw can be made to run script or break its layout.
Charts use a ``viewBox`` with ``width="100%"`` so they scale with the window instead of being
clipped, and long series are reduced to a min/max envelope per pixel column (the single-backtest
report's ``_envelope``), so 100 markets x 50k candles still make a page of a few hundred kB.

Benchmarks (:func:`benchmarks`, costs not applied): *buy and hold* splits ``init_cash`` equally
over the markets of ``prices`` and buys each at its first close; a market whose first close comes
later keeps its share as cash until then (so no share is ever lost or re-split); never rebalanced.
*Equal weight* holds, from each close to the next, 1/N of value in each of the N markets that have
a close at the earlier candle; a market without a candle at the later one keeps its last close.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from quantdag.backtest.report import (
    CSS, PAD_L, PAD_R, WIDTH, _axes, _envelope, _fmt_metric, _fmt_time, _Frame, _kv_table, _path,
)  # fmt: skip
from quantdag.timeframes import MS_PER_DAY

if TYPE_CHECKING:
    from quantdag.portfolio.engine import PortfolioResult

MAX_TRADE_ROWS = 100
MAX_EVENT_ROWS = 500
SHARPE_WINDOW_DAYS = 30
COLUMNS = WIDTH - PAD_L - PAD_R  # one envelope column per pixel column of the viewBox
PALETTE = ("#2457c5", "#e08a1e", "#1a9850", "#8e44ad", "#c83c3c", "#17a2b8", "#6c757d", "#b8860b")
EXTRA_CSS = """
svg{height:auto;display:block;max-width:1400px}.empty{color:#5a6478;font-style:italic}
.legend i{display:inline-block;width:16px;height:3px;vertical-align:middle;margin:0 4px 0 10px}
tr.sub td{font-weight:600;background:#f8f9fc}tr.tot td{font-weight:700;border-top:2px solid #9aa3b5}
.warn{color:#c83c3c}
"""


def benchmarks(prices: pl.DataFrame, init_cash: float) -> pl.DataFrame:
    """ts, buy_and_hold, equal_weight: the two cost-free benchmarks of the module docstring.

    ``prices`` is ts plus one close column per market (NaN or null where it had no candle).
    """
    symbols = [c for c in prices.columns if c != "ts"]
    n_rows = prices.height
    if not symbols or not n_rows:
        flat = np.full(n_rows, float(init_cash))
        return pl.DataFrame({"ts": prices["ts"] if "ts" in prices.columns else [], "buy_and_hold": flat, "equal_weight": flat})
    close = prices.select(pl.col(symbols).cast(pl.Float64)).to_numpy()
    have = np.isfinite(close) & (close > 0)
    last = np.where(have, np.arange(n_rows)[:, None], -1)
    np.maximum.accumulate(last, axis=0, out=last)  # row of each market's latest close so far
    cols = np.arange(len(symbols))
    filled = np.where(last >= 0, close[np.maximum(last, 0), cols], np.nan)
    first = close[np.argmax(have, axis=0), cols]
    share = float(init_cash) / len(symbols)
    buy_hold = share * np.where(last >= 0, filled / first, 1.0).sum(axis=1)
    held = have[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(held, filled[1:] / np.where(held, close[:-1], 1.0) - 1.0, 0.0).sum(axis=1)
    n_held = held.sum(axis=1)
    r = np.where(n_held > 0, step / np.maximum(n_held, 1), 0.0)
    equal = float(init_cash) * np.concatenate(([1.0], np.cumprod(1.0 + r)))
    return pl.DataFrame({"ts": prices["ts"], "buy_and_hold": buy_hold, "equal_weight": equal})


def turnover_by_period(equity: pl.DataFrame, trades: pl.DataFrame, every: str) -> pl.DataFrame:
    """start, notional, mean_equity, turnover: traded notional of each ``every`` period (``1d``,
    ``1mo``) over that period's mean equity; a period without trades has turnover 0."""
    eq = equity.sort("ts").group_by_dynamic("ts", every=every).agg(mean_equity=pl.col("equity").mean())
    tr = trades.sort("ts").group_by_dynamic("ts", every=every).agg(notional=pl.col("notional").sum())
    out = eq.join(tr, on="ts", how="left").with_columns(pl.col("notional").fill_null(0.0))
    return out.select(pl.col("ts").alias("start"), "notional", "mean_equity",
                      turnover=pl.col("notional") / pl.col("mean_equity"))  # fmt: skip


def rolling_sharpe(eq: np.ndarray, init_cash: float, window: int, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe of the per-candle returns over the last ``window`` candles (NaN before the
    first full window and where the window's returns do not vary); returns as in the metrics."""
    r = eq / np.concatenate(([init_cash], eq[:-1])) - 1.0
    s = pl.Series(r)
    mean, std = s.rolling_mean(window).to_numpy(), s.rolling_std(window, ddof=1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 1e-15, mean / std * math.sqrt(periods_per_year), np.nan)


def _svg(height: int, label: str, body: str) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" role="img" '
            f'aria-label="{html.escape(label)}">{body}</svg>')  # fmt: skip


def _legend(items: list[tuple[str, str]], note: str = "") -> str:
    keys = "".join(f'<i style="background:{c}"></i>{html.escape(name)}' for name, c in items)
    return f'<p class="legend">{keys}{" · " + html.escape(note) if note else ""}</p>'


def _lines_svg(label: str, ts: np.ndarray, series: list[tuple[np.ndarray, str]], height: int,
               fmt: str, base: float | None = None, log: bool = False) -> str:  # fmt: skip
    """Lines sharing the candle axis; non-finite points are skipped, each line is enveloped."""
    finite = [y[np.isfinite(y)] for y, _ in series]
    vals = np.concatenate([v for v in finite if v.size] + ([np.array([base])] if base is not None else []) or [np.zeros(1)])
    lo, hi = float(vals.min()), float(vals.max())
    log = log and lo > 0 and hi / lo > 10
    f = _Frame(ts.shape[0], lo, hi, height, log=log)
    body = [_axes(f, ts, (format(lo, fmt), format(hi, fmt)))]
    if base is not None:
        yb = f.y(base)
        body.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{yb:.1f}" y2="{yb:.1f}" stroke="#9aa3b5" stroke-dasharray="4 3"/>')
    for y, color in series:
        keep = np.flatnonzero(np.isfinite(y))
        idx, ys = _envelope(y[keep], COLUMNS)
        body.append(f'<path d="{_path(f.x(keep[idx]), f.y(ys))}" fill="none" stroke="{color}" stroke-width="1.2"/>')
    return _svg(height, label, "".join(body))


def _drawdown_svg(ts: np.ndarray, dd: np.ndarray) -> str:
    idx, ys = _envelope(dd, COLUMNS)
    g = _Frame(dd.shape[0], min(float(dd.min()), -1e-9), 0.0, 140)
    xs, zero = g.x(idx), g.y(0.0)
    area = f"M{xs[0]:.1f},{zero:.1f} " + _path(xs, g.y(ys))[1:] + f" L{xs[-1]:.1f},{zero:.1f} Z"
    body = _axes(g, ts, (f"{dd.min():.1%}", "0%")) + f'<path d="{area}" fill="#e0525233" stroke="#c83c3c" stroke-width="1"/>'
    return _svg(140, "drawdown", body)


def _turnover_svg(ts: np.ndarray, per: pl.DataFrame) -> str:
    starts = np.searchsorted(ts, per["start"].dt.epoch("ms").to_numpy())
    ends = np.r_[starts[1:], ts.shape[0]]
    tv = np.nan_to_num(per["turnover"].to_numpy(), nan=0.0, posinf=0.0)
    hi = float(tv.max()) if tv.size else 0.0
    f = _Frame(ts.shape[0] + 1, 0.0, hi if hi > 0 else 1.0, 160)
    bars = []
    for a, b, v in zip(starts, ends, tv, strict=True):
        x0, x1, y = f.x(a), f.x(b), f.y(v)
        bars.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 0.6, 0.4):.1f}" height="{f.y(0.0) - y:.1f}"/>')
    body = _axes(f, ts, ("0", f"{hi:.2f}x")) + f'<g fill="#2457c5" opacity=".75">{"".join(bars)}</g>'
    return _svg(160, "turnover", body)


def _pnl_bars_svg(totals: list[tuple[str, float]]) -> str:
    """Horizontal bars of net P&L per strategy, gains right of zero, losses left."""
    row, height = 22, 22 * len(totals) + 16
    span = max((abs(v) for _, v in totals), default=1.0) or 1.0
    mid, half = PAD_L + 180 + (WIDTH - PAD_L - 180 - PAD_R) / 2, (WIDTH - PAD_L - 180 - PAD_R) / 2 - 70
    parts = [f'<line x1="{mid:.1f}" x2="{mid:.1f}" y1="4" y2="{height - 4}" stroke="#c9cfdb"/>']
    for i, (name, v) in enumerate(totals):
        y, w = 8 + i * row, abs(v) / span * half
        x = mid if v >= 0 else mid - w
        color, anchor, tx = ("#1a9850", "start", mid + w + 4) if v >= 0 else ("#c83c3c", "end", mid - w - 4)
        label = html.escape(name if len(name) <= 40 else name[:39] + "…")
        parts.append(f'<text class="axis" x="{PAD_L + 170}" y="{y + 12}" text-anchor="end">{label}</text>'
                     f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{color}"/>'
                     f'<text class="axis" x="{tx:.1f}" y="{y + 12}" text-anchor="{anchor}">{v:,.2f}</text>')  # fmt: skip
    return _svg(height, "net P&L per strategy", "".join(parts))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"<td>{v:,.6g}</td>"
    if isinstance(v, datetime):
        return f'<td class="l">{v.strftime("%Y-%m-%d %H:%M")}</td>'
    if isinstance(v, int | bool):
        return f"<td>{v}</td>"
    return f'<td class="l">{html.escape(str(v))}</td>'


def _frame_table(df: pl.DataFrame, limit: int, what: str) -> str:
    """The last ``limit`` rows of ``df``, most recent first, every column."""
    shown = df.tail(limit).reverse()
    head = "".join(f'<th class="l">{html.escape(c)}</th>' for c in df.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in shown.iter_rows())
    note = f"last {shown.height} of {df.height} {what}" if df.height > limit else f"{df.height} {what}"
    return f'<p class="legend">{note}</p><table><tr>{head}</tr>{body}</table>'


def _strategies(result: PortfolioResult) -> list[str]:
    """Strategy names from the attribution, then any more named in settings["strategies"]."""
    names: list[str] = []
    if result.attribution.height:
        names += [str(s) for s in result.attribution["strategy"].unique(maintain_order=True).to_list()]
    declared = result.settings.get("strategies") or []
    if isinstance(declared, str | dict):
        declared = [declared] if isinstance(declared, str) else list(declared)
    for item in declared:
        name = str(item.get("name", item)) if isinstance(item, dict) else str(item)
        if name not in names:
            names.append(name)
    return names


ATTR_COLS = ("trading_pnl", "fees", "slippage", "net_pnl")


def _money_cells(values: Iterable[float]) -> str:
    return "".join(f"<td>{v:,.2f}</td>" for v in values)


def attribution_html(result: PortfolioResult, init_cash: float) -> str:
    """Strategy x market rows, a total per strategy and overall, reconciled with final equity - init cash."""
    att = result.attribution
    if att.height == 0:
        return '<p class="empty">No attribution: this run carries no per-strategy P&amp;L.</p>'
    att = att.with_columns(pl.col("strategy", "symbol").cast(pl.Utf8).fill_null(""),
                           pl.col(ATTR_COLS).cast(pl.Float64).fill_null(0.0))  # fmt: skip
    rows, totals = [], []
    for strat in sorted(att["strategy"].unique().to_list()):
        sub = att.filter(pl.col("strategy") == strat)
        for r in sub.sort("symbol").iter_rows(named=True):
            rows.append(f'<tr><td class="l">{html.escape(str(strat))}</td><td class="l">{html.escape(str(r["symbol"]))}</td>'
                        f"{_money_cells(r[c] for c in ATTR_COLS)}</tr>")  # fmt: skip
        sums = [float(sub[c].sum()) for c in ATTR_COLS]
        totals.append((str(strat), sums[-1]))
        rows.append(f'<tr class="sub"><td class="l">{html.escape(str(strat))}</td><td class="l">all markets</td>{_money_cells(sums)}</tr>')
    overall = [float(att[c].sum()) for c in ATTR_COLS]
    rows.append(f'<tr class="tot" id="attribution-total"><td class="l">total</td><td class="l"></td>{_money_cells(overall)}</tr>')
    expected = result.final_equity - init_cash
    gap = overall[-1] - expected
    off = abs(gap) > 1e-6 * max(1.0, abs(init_cash))
    check = f"final equity − init cash = {expected:,.2f}" + (f' · <span class="warn">unexplained {gap:,.2f}</span>' if off else " (matches)")
    head = '<tr><th class="l">strategy</th><th class="l">market</th>' + "".join(f"<th>{c}</th>" for c in ATTR_COLS) + "</tr>"
    return (f'{_pnl_bars_svg(totals)}<p class="legend">{check}</p><table>{head}{"".join(rows)}</table>')  # fmt: skip


def _init_cash(result: PortfolioResult) -> float:
    cash = result.settings.get("init_cash")
    if cash is not None:
        return float(cash)
    return float(result.equity["equity"][0]) if result.equity.height else result.final_equity


def _charts(result: PortfolioResult, init_cash: float) -> str:
    from quantdag.portfolio.engine import _periods  # the metrics' annualisation, one home

    equity = result.equity.sort("ts")
    ts = equity["ts"].dt.epoch("ms").to_numpy()
    eq = equity["equity"].to_numpy().astype(float)
    series, names = [(eq, PALETTE[0])], [("portfolio (after fees and slippage)", PALETTE[0])]
    if "ts" in result.prices.columns and result.prices.width > 1:
        bench = equity.select("ts").join(benchmarks(result.prices.sort("ts"), init_cash), on="ts", how="left")
        series += [(bench["buy_and_hold"].to_numpy(), PALETTE[1]), (bench["equal_weight"].to_numpy(), PALETTE[2])]
        names += [("buy and hold (equal split at each first close, never rebalanced)", PALETTE[1]),
                  ("equal weight (rebalanced every candle)", PALETTE[2])]  # fmt: skip
        note = "benchmarks without fees or slippage"
    else:
        note = "no prices in the result: benchmarks not drawn"
    out = [f'<section id="equity"><h2>Equity vs benchmarks</h2>{_legend(names, note)}',
           _lines_svg("equity", ts, series, 280, ",.0f", base=init_cash, log=True), "</section>"]  # fmt: skip
    peak = np.maximum.accumulate(np.concatenate(([init_cash], eq)))[1:]
    out.append(f'<section id="drawdown"><h2>Drawdown</h2>{_drawdown_svg(ts, eq / peak - 1.0)}</section>')
    with np.errstate(invalid="ignore", divide="ignore"):
        gross = np.where(eq > 0, equity["gross_exposure"].to_numpy() / eq, np.nan)
        net = np.where(eq > 0, equity["net_exposure"].to_numpy() / eq, np.nan)
    out.append('<section id="exposure"><h2>Exposure (fraction of equity)</h2>'
               + _legend([("gross", PALETTE[3]), ("net", PALETTE[5])], "dashed line: 0")
               + _lines_svg("exposure", ts, [(gross, PALETTE[3]), (net, PALETTE[5])], 180, ".0%", base=0.0) + "</section>")  # fmt: skip
    span_days = (ts[-1] - ts[0]) / MS_PER_DAY
    every, per_name = ("1d", "day") if span_days <= 366 else ("1mo", "month")
    per = turnover_by_period(equity, result.trades, every)
    total = _fmt_metric("turnover", result.metrics.get("turnover", float("nan")))
    out.append(f'<section id="turnover"><h2>Turnover per {per_name}</h2><p class="legend">traded notional per {per_name} '
               f"÷ that {per_name}'s mean equity · total over the run: {total}</p>"
               f"{_turnover_svg(ts, per)}</section>")  # fmt: skip
    step = float(np.median(np.diff(ts))) if ts.shape[0] > 1 else float(MS_PER_DAY)
    window = int(max(2, min(round(SHARPE_WINDOW_DAYS * MS_PER_DAY / step), ts.shape[0] // 3)))
    ppy = _periods(equity["ts"], result.settings.get("timeframe"))
    rs = rolling_sharpe(eq, init_cash, window, ppy)
    out.append(f'<section id="rolling-sharpe"><h2>Rolling Sharpe</h2><p class="legend">window {window:,} candles '
               f"(~{window * step / MS_PER_DAY:.1f} days), annualised with {ppy:,.0f} candles a year</p>"
               + (_lines_svg("rolling sharpe", ts, [(rs, PALETTE[0])], 160, ".2f", base=0.0) if np.isfinite(rs).any()
                  else '<p class="empty">Not enough varying returns for a rolling Sharpe.</p>') + "</section>")  # fmt: skip
    return "".join(out)


def render(result: PortfolioResult, title: str | None = None) -> str:
    """The whole portfolio tear sheet as one HTML string."""
    s, m = result.settings, result.metrics
    name = str(title or s.get("name") or "Portfolio")
    init_cash = _init_cash(result)
    strategies = _strategies(result)
    n_markets = max(result.prices.width - 1, 0) if "ts" in result.prices.columns else result.positions.height
    if result.equity.height:
        ts = result.equity["ts"].dt.epoch("ms")
        period = f"{_fmt_time(ts.min())} → {_fmt_time(ts.max())} UTC · {result.equity.height:,} candles"
        charts = _charts(result, init_cash)
    else:
        period, charts = "no candles", '<p class="empty">No candles: nothing to chart.</p>'
    costs = f"fee {float(s.get('fee', float('nan'))):.4%}, slippage {float(s.get('slippage', float('nan'))):.4%} per trade"
    strat_txt = ", ".join(strategies) if strategies else "none named"
    kpis = [("Final equity", "final_equity"), ("Total return", "total_return"), ("Sharpe", "sharpe"),
            ("Max drawdown", "max_drawdown"), ("Turnover", "turnover"), ("Fees", "fees_paid")]  # fmt: skip
    kpi_html = "".join(f'<div class="kpi"><b>{_fmt_metric(k, m.get(k, float("nan")))}</b><span>{label}</span></div>' for label, k in kpis)
    metrics_html = _kv_table([(str(k), _fmt_metric(str(k), v)) for k, v in m.items()])
    settings_html = _kv_table([(str(k), html.escape(repr(v) if len(repr(v)) <= 400 else repr(v)[:399] + "…")) for k, v in s.items()])
    if result.risk_events.height:
        events = _frame_table(result.risk_events.sort("ts"), MAX_EVENT_ROWS, "risk events")
    else:
        events = '<p class="empty">No risk events: no rule tripped or resumed.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(name)}</title><style>{CSS}{EXTRA_CSS}</style></head>
<body>
<h1>{html.escape(name)}</h1>
<div class="sub">Strategies: {html.escape(strat_txt)} · {n_markets} markets · {period} · {html.escape(costs)}</div>
<div class="kpis">{kpi_html}</div>
{charts}
<section id="attribution"><h2>Attribution</h2>{attribution_html(result, init_cash)}</section>
<section id="risk-events"><h2>Risk events</h2>{events}</section>
<div class="cols">
<section id="metrics"><h2>Metrics</h2>{metrics_html}</section>
<section id="settings"><h2>Settings</h2>{settings_html}</section>
</div>
<section id="trades"><h2>Trades</h2>{_frame_table(result.trades, MAX_TRADE_ROWS, "trades")}</section>
</body></html>
"""


def write_report(result: PortfolioResult, path: str | Path, *, title: str | None = None) -> Path:
    """Render and write the tear sheet, creating parent folders; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, title), encoding="utf-8")
    return path

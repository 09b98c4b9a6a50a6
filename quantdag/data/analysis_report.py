"""The market data report of ``quantdag analyze``: one self-contained HTML file, charts as inline SVG
(no scripts, no CDN, opens offline)."""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantdag.data.analysis import MarketAnalysis

W, H, PAD = 900, 220, 40
REGIME_COLOURS = ("#e8f4ea", "#fdf6e3", "#fbe5e1")  # low, mid, high volatility
EVENT_COLOURS = {"price_jump": "#d62728", "volume_spike": "#9467bd", "gap": "#7f7f7f", "dislocation": "#ff7f0e",
                 "depeg": "#8c564b", "vol_regime": "#2ca02c"}  # fmt: skip


def _day(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def _scale(v: np.ndarray, lo: float, hi: float, a: float, b: float) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return a + (v - lo) / span * (b - a)


def _polyline(xs: np.ndarray, ys: np.ndarray, colour: str) -> str:
    ok = np.isfinite(ys)
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs[ok], ys[ok], strict=True))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{pts}"/>'


def _num(v: float) -> str:
    """A value for an axis label: thousands separated, never in exponent notation for prices."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _axis(t0: float, t1: float, lo: float, hi: float) -> str:
    return (f'<text x="{PAD}" y="{H - 8}" font-size="11">{_day(t0)}</text>'
            f'<text x="{W - PAD}" y="{H - 8}" font-size="11" text-anchor="end">{_day(t1)}</text>'
            f'<text x="{PAD + 4}" y="{PAD - 6}" font-size="11">{_num(hi)}</text>'
            f'<text x="{PAD + 4}" y="{H - PAD - 4}" font-size="11">{_num(lo)}</text>'
            f'<rect x="{PAD}" y="{PAD - 20}" width="{W - 2 * PAD}" height="{H - 2 * PAD + 20}" fill="none" stroke="#ccc"/>')  # fmt: skip


def timeline_svg(a: MarketAnalysis) -> str:
    """Close price with volatility regimes shaded and events marked (hover shows the detail)."""
    s = a.series
    ts, close = s["ts_ms"].astype(float), s["close"]
    t0, t1 = float(ts[0]), float(ts[-1])
    xs = _scale(ts, t0, t1, PAD, W - PAD)
    lo, hi = float(np.nanmin(close)), float(np.nanmax(close))
    ys = _scale(close, lo, hi, H - PAD, PAD - 20)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="price timeline">']
    regime = s["regime"]
    start = 0
    for i in range(1, regime.size + 1):  # one rectangle per regime spell
        if i == regime.size or regime[i] != regime[start]:
            if regime[start] >= 0:
                x0, x1 = xs[start], xs[min(i, regime.size - 1)]
                parts.append(f'<rect x="{x0:.1f}" y="{PAD - 20}" width="{max(x1 - x0, 0.5):.1f}" height="{H - 2 * PAD + 20}" '
                             f'fill="{REGIME_COLOURS[regime[start]]}"/>')  # fmt: skip
            start = i
    parts.append(_polyline(xs, ys, "#1f77b4"))
    for row in a.events.iter_rows(named=True):
        e0 = row["ts_start"].timestamp() * 1000
        x = float(_scale(np.array([e0]), t0, t1, PAD, W - PAD)[0])
        colour = EVENT_COLOURS.get(row["event_type"], "#000")
        title = html.escape(f"{row['event_type']} {row['severity']} {row['ts_start']:%Y-%m-%d %H:%M}: {row['detail']}")
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{H - PAD}" y2="{H - PAD + 8}" stroke="{colour}" stroke-width="2">'
                     f"<title>{title}</title></line>")  # fmt: skip
    parts.append(_axis(t0, t1, lo, hi))
    parts.append("</svg>")
    return "".join(parts)


def vol_svg(a: MarketAnalysis) -> str:
    s = a.series
    ts, vol = s["ts_ms"].astype(float), s["rolling_vol"]
    if not np.isfinite(vol).any():
        return "<p>Too few candles for a rolling volatility.</p>"
    t0, t1 = float(ts[0]), float(ts[-1])
    lo, hi = float(np.nanmin(vol)), float(np.nanmax(vol))
    xs = _scale(ts, t0, t1, PAD, W - PAD)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="rolling volatility">',
             _polyline(xs, _scale(vol, lo, hi, H - PAD, PAD - 20), "#d62728")]  # fmt: skip
    for th in a.regimes.get("thresholds", []):
        y = float(_scale(np.array([th]), lo, hi, H - PAD, PAD - 20)[0])
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    parts += [_axis(t0, t1, lo, hi), "</svg>"]
    return "".join(parts)


def histogram_svg(a: MarketAnalysis, bins: int = 80) -> str:
    """Log-return histogram (log count scale, so the tails show) against a normal of the same mean/std."""
    r = a.series["log_return"]
    r = r[np.isfinite(r)]
    st = a.returns
    if r.size < 3 or not st.get("std"):
        return "<p>Too few returns for a distribution.</p>"
    counts, edges = np.histogram(r, bins=bins)
    width = edges[1] - edges[0]
    centres = (edges[:-1] + edges[1:]) / 2
    normal = r.size * width * np.exp(-0.5 * ((centres - st["mean"]) / st["std"]) ** 2) / (st["std"] * math.sqrt(2 * math.pi))
    top = math.log10(max(counts.max(), normal.max()) + 1)
    xs = _scale(edges, float(edges[0]), float(edges[-1]), PAD, W - PAD)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="return distribution">']
    for i, c in enumerate(counts):
        h = (math.log10(c + 1) / top) * (H - 2 * PAD + 20) if c else 0
        parts.append(f'<rect x="{xs[i]:.1f}" y="{H - PAD - h:.1f}" width="{max(xs[i + 1] - xs[i] - 0.5, 0.5):.1f}" height="{h:.1f}" fill="#1f77b4"/>')
    ny = H - PAD - np.log10(normal + 1) / top * (H - 2 * PAD + 20)
    parts.append(_polyline(_scale(centres, float(edges[0]), float(edges[-1]), PAD, W - PAD), ny, "#ff7f0e"))
    parts.append(f'<text x="{PAD}" y="{H - 8}" font-size="11">{edges[0]:.4f}</text>'
                 f'<text x="{W - PAD}" y="{H - 8}" font-size="11" text-anchor="end">{edges[-1]:.4f}</text>'
                 f'<text x="{W - PAD}" y="{PAD - 4}" font-size="11" text-anchor="end">bars: candles (log scale); line: normal</text></svg>')  # fmt: skip
    return "".join(parts)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, datetime):
        return f"{v:%Y-%m-%d %H:%M}"
    return html.escape(str(v))


def _table(frame: pl.DataFrame, limit: int = 20, empty: str = "none") -> str:
    if frame.height == 0:
        return f"<p>{empty}</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in frame.head(limit).iter_rows())
    more = f"<p>… and {frame.height - limit} more</p>" if frame.height > limit else ""
    return f"<table><tr>{head}</tr>{rows}</table>{more}"


def _kv(items: dict[str, Any]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in items.items()) + "</table>"


def _by_severity(events: pl.DataFrame) -> pl.DataFrame:
    """Critical before warning before info, the highest score first within each."""
    if events.height == 0:
        return events
    rank = pl.col("severity").replace_strict({"critical": 0, "warning": 1, "info": 2}, default=3)
    return events.sort([rank, pl.col("score")], descending=[False, True]).select("event_type", "severity", "ts_start", "ts_end", "score", "detail")


def render(a: MarketAnalysis, source: str) -> str:
    st, rg, cov = a.returns, a.regimes, a.coverage
    tails = pl.DataFrame({"quantile": list(st.get("quantiles", {})), "observed": list(st.get("quantiles", {}).values()),
                          "normal": list(st.get("normal_quantiles", {}).values())}) if "quantiles" in st else pl.DataFrame()  # fmt: skip
    dist = {k: st.get(k) for k in ("n", "mean", "std", "annual_vol", "skew", "excess_kurtosis", "beyond_3sd", "beyond_3sd_normal")}
    regimes = {"window (candles)": rg.get("window"), "switches": rg.get("switches"),
               **{f"share {k}": v for k, v in rg.get("share", {}).items()},
               **{f"mean spell {k} (candles)": v for k, v in rg.get("mean_spell", {}).items()},
               **{f"mean vol {k}": v for k, v in rg.get("mean_vol", {}).items()}}  # fmt: skip
    counts = a.events.group_by("event_type").len().sort("event_type") if a.events.height else pl.DataFrame()
    title = f"{a.market} · data analysis"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:1em auto;color:#222}}table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ddd;padding:2px 8px;font-size:13px;text-align:right}}th{{background:#f4f4f4}}h2{{margin-top:1.4em}}</style></head>
<body><h1>{html.escape(title)}</h1><p>source: {html.escape(source)}</p>
<h2>Coverage</h2>{_kv(cov)}
<h2>Timeline: price, volatility regimes, events</h2>{timeline_svg(a)}
<p>Shading: low / mid / high volatility regime (terciles of the rolling volatility). Ticks under the axis: events (hover for detail).</p>
<h2>Market events</h2>{_table(counts, empty="no events")}<p>The most severe first (all of them are on the timeline):</p>{_table(_by_severity(a.events), 30, "no events")}
<h2>Gaps and filled candles</h2>{_table(a.gaps, empty="no gaps")}
<h2>Zero-volume runs</h2>{_table(a.zero_volume_runs, empty="no zero-volume candles")}
<h2>Price jumps</h2><p>Log returns beyond 5 robust standard deviations (1.4826 × MAD).</p>{_table(a.jumps, empty="none")}
<h2>Return distribution and fat tails</h2>{histogram_svg(a)}{_kv(dist)}
<p>Tail quantiles of the log return, observed against a normal with the same mean and standard deviation:</p>{_table(tails)}
<h2>Volatility regimes</h2>{vol_svg(a)}{_kv(regimes)}
<h2>Correlation with other markets</h2><p>Pearson correlation of log returns on shared candles.</p>{_table(a.correlations, empty="no other market to compare")}
</body></html>"""


def write_report(a: MarketAnalysis, path: str | Path, source: str) -> Path:
    """Write the report (the folder is created; the file is replaced whole)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(render(a, source))
    tmp.replace(p)
    return p

"""What a market's candles are like before a strategy trusts them: the numbers of ``quantdag analyze``.

Coverage and gaps (a backtest across a hole or long filled stretches is not the market), zero-volume
runs (prices that did not trade), price jumps, the return distribution and its fat tails (a
normal-based risk number understates them), volatility regimes, correlation with other markets and
the market's events. Pure functions of candle frames (``ts`` UTC datetime, OHLCV, optional
``filled``); the HTML is drawn by :mod:`quantdag.data.analysis_report`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quantdag.timeframes import timeframe_ms

#: Quantiles of the log return reported (tails and body).
QUANTILES = (0.001, 0.01, 0.05, 0.5, 0.95, 0.99, 0.999)
_NORMAL_Z = {0.001: -3.090232, 0.01: -2.326348, 0.05: -1.644854, 0.5: 0.0, 0.95: 1.644854, 0.99: 2.326348, 0.999: 3.090232}


@dataclass
class MarketAnalysis:
    """Everything the report shows about one market's candles."""

    market: str
    timeframe: str
    coverage: dict[str, Any]
    gaps: pl.DataFrame  # gap_start, gap_end, missing, filled
    zero_volume_runs: pl.DataFrame  # start, end, candles
    jumps: pl.DataFrame  # ts, log_return, z
    returns: dict[str, Any]
    regimes: dict[str, Any]
    correlations: pl.DataFrame  # market, correlation, overlap
    events: pl.DataFrame
    series: dict[str, np.ndarray] = field(default_factory=dict)  # ts_ms, close, log_return, rolling_vol, regime


def coverage(candles: pl.DataFrame, timeframe: str) -> dict[str, Any]:
    """Candles present, expected on the grid from first to last, filled ones, missing ones."""
    tf = timeframe_ms(timeframe)
    ts = candles["ts"].dt.epoch("ms")
    first, last = int(ts.min()), int(ts.max())
    expected = (last - first) // tf + 1
    filled = int(candles["filled"].sum()) if "filled" in candles.columns else 0
    present = candles.height
    return {"first": candles["ts"].min(), "last": candles["ts"].max(), "expected": expected, "present": present,
            "missing": expected - present, "filled": filled, "real": present - filled,
            "coverage": (present - filled) / expected if expected else 0.0}  # fmt: skip


def zero_volume_runs(candles: pl.DataFrame) -> pl.DataFrame:
    """Runs of consecutive candles with zero volume, longest first."""
    flag = candles["volume"] == 0
    run_id = (flag != flag.shift(1, fill_value=False)).cum_sum()
    runs = (candles.with_columns(_z=flag, _run=run_id).filter(pl.col("_z"))
            .group_by("_run").agg(start=pl.col("ts").min(), end=pl.col("ts").max(), candles=pl.len()))  # fmt: skip
    return runs.drop("_run").sort(["candles", "start"], descending=[True, False])


def log_returns(candles: pl.DataFrame) -> pl.Series:
    return (candles["close"] / candles["close"].shift(1)).log().alias("log_return")


def price_jumps(candles: pl.DataFrame, *, top: int = 10, z_min: float = 5.0) -> pl.DataFrame:
    """The largest absolute log returns with their size in robust standard deviations (MAD-based),
    those beyond ``z_min`` (at most ``top``)."""
    r = log_returns(candles)
    med = r.median() or 0.0
    mad = (r - med).abs().median() or 0.0
    scale = 1.4826 * mad if mad > 0 else (r.std() or 1.0)
    frame = pl.DataFrame({"ts": candles["ts"], "log_return": r}).drop_nulls()
    frame = frame.with_columns(z=(pl.col("log_return") - med) / scale)
    return frame.filter(pl.col("z").abs() >= z_min).sort(pl.col("z").abs(), descending=True).head(top)


def return_stats(r: np.ndarray, timeframe: str) -> dict[str, Any]:
    """Moments, tail quantiles against a normal of the same mean and std, and tail frequency."""
    r = r[np.isfinite(r)]
    n = r.size
    if n < 3:
        return {"n": n}
    mean, std = float(r.mean()), float(r.std(ddof=1))
    z = (r - mean) / std if std > 0 else np.zeros_like(r)
    skew = float((z**3).mean())
    kurt = float((z**4).mean()) - 3.0
    q = {p: float(np.quantile(r, p)) for p in QUANTILES}
    normal = {p: mean + _NORMAL_Z[p] * std for p in QUANTILES}
    per_year = 365.25 * 86_400_000 / timeframe_ms(timeframe)
    beyond3 = float((np.abs(z) > 3).mean())
    return {"n": n, "mean": mean, "std": std, "annual_vol": std * math.sqrt(per_year), "skew": skew,
            "excess_kurtosis": kurt, "quantiles": q, "normal_quantiles": normal,
            "beyond_3sd": beyond3, "beyond_3sd_normal": 0.0027}  # fmt: skip


def vol_regimes(r: np.ndarray, window: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Rolling volatility over ``window`` returns (trailing), split at its terciles into low/mid/high.

    Returns the summary (thresholds, share of time and mean spell length per regime, switches),
    the rolling volatility and the regime (0, 1, 2; -1 during warm-up).
    """
    vol = pl.Series(r).rolling_std(window).to_numpy()
    ok = np.isfinite(vol)
    regime = np.full(r.size, -1)
    if ok.sum() < 3:
        return {"window": window, "thresholds": [], "share": {}, "switches": 0}, vol, regime
    lo, hi = np.quantile(vol[ok], [1 / 3, 2 / 3])
    regime[ok] = np.where(vol[ok] <= lo, 0, np.where(vol[ok] <= hi, 1, 2))
    valid = regime[ok]
    switches = int((np.diff(valid) != 0).sum())
    names = ("low", "mid", "high")
    spells = {k: [] for k in names}
    start = 0
    for i in range(1, valid.size + 1):
        if i == valid.size or valid[i] != valid[start]:
            spells[names[valid[start]]].append(i - start)
            start = i
    summary = {"window": window, "thresholds": [float(lo), float(hi)],
               "share": {k: float((valid == j).mean()) for j, k in enumerate(names)},
               "mean_spell": {k: float(np.mean(v)) if v else 0.0 for k, v in spells.items()},
               "mean_vol": {k: float(vol[ok][valid == j].mean()) for j, k in enumerate(names)}, "switches": switches}  # fmt: skip
    return summary, vol, regime


def correlations(candles: pl.DataFrame, others: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Pearson correlation of log returns with each other market, on the candles both have."""
    mine = pl.DataFrame({"ts": candles["ts"], "a": log_returns(candles)})
    rows = []
    for name, other in others.items():
        theirs = pl.DataFrame({"ts": other["ts"], "b": log_returns(other)})
        both = mine.join(theirs, on="ts", how="inner").drop_nulls().filter(pl.col("a").is_finite() & pl.col("b").is_finite())
        corr = both.select(pl.corr("a", "b")).item() if both.height > 2 else None
        rows.append({"market": name, "correlation": corr, "overlap": both.height})
    return pl.DataFrame(rows, schema={"market": pl.Utf8, "correlation": pl.Float64, "overlap": pl.Int64}).sort(
        "correlation", descending=True, nulls_last=True)


def analyze(
    candles: pl.DataFrame,
    market: str,
    timeframe: str,
    *,
    gaps: pl.DataFrame,
    events: pl.DataFrame,
    others: dict[str, pl.DataFrame] | None = None,
    vol_window: int | None = None,
) -> MarketAnalysis:
    """All of the above for one market. ``gaps`` (GAPS frame) and ``events`` (EVENTS frame) come
    from the warehouse or were computed by the caller; ``vol_window`` defaults to a day of candles
    (at least 10)."""
    candles = candles.sort("ts")
    r = log_returns(candles).to_numpy()
    window = vol_window or max(10, int(86_400_000 // timeframe_ms(timeframe)))
    regimes, vol, regime = vol_regimes(r, window)
    return MarketAnalysis(
        market=market, timeframe=timeframe, coverage=coverage(candles, timeframe),
        gaps=gaps.select("gap_start", "gap_end", "missing", "filled").sort("missing", descending=True),
        zero_volume_runs=zero_volume_runs(candles), jumps=price_jumps(candles),
        returns=return_stats(r, timeframe), regimes=regimes, correlations=correlations(candles, others or {}),
        events=events.sort("ts_start"),
        series={"ts_ms": candles["ts"].dt.epoch("ms").to_numpy(), "close": candles["close"].to_numpy(),
                "log_return": r, "rolling_vol": vol, "regime": regime},
    )  # fmt: skip

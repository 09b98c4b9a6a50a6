"""Speed, memory and agreement of ``quantdag.optimize.sweep`` against vectorbt, in one run.
Prints one JSON line on stdout.

Grid: SMA crossover, fast 5..104 x slow 20..218 step 2 (10,000 pairs; the fast < slow
constraint leaves 8,151), on 50,000 synthetic hourly candles (``benchmarks/backtest.py``'s
generator). quantdag runs the whole grid with its default settings (next-open fills, 10 bps fee,
5 bps slippage) and again in vectorbt's setting (fill at close, 0.1 % fee, no slippage, all-in
long-only). vectorbt (rust and numba engines, ``Portfolio.from_signals`` on 2-D numpy arrays)
runs in the peers venv (``benchmarks/peers.txt``) in a subprocess, on an evenly spread subset of
the grid (``--vbt-combos``, default 200), in two jobs:

* ``simulation``: the portfolio simulation and final value only, on the strategy's own signals
  built before the clock starts. vectorbt's most favourable case, and less work than quantdag's
  side, whose time includes its moving averages, crossings and every metric.
* ``same_output``: the same job as ``sweep()``, from the closes to the metrics table: vectorbt's
  moving averages (each distinct period once), its crossings, the simulation and 15 of the
  table's metrics through vectorbt's own accessors. Every metric is compared per combination.

vectorbt's time per combination grows with the number of columns in one call (simulation,
measured here: ~5-7 ms at 25-100 columns, ~8 ms at 200, ~12 ms at 1,000, ~17 ms at 2,000), so
each job runs the subset in column chunks of each ``--vbt-chunks`` size and its fastest chunking
counts (rust: median of ``--repeats`` runs; numba: one run each); that time is
extrapolated linearly to the full grid, which is exact for independent chunks (stated in the
output). quantdag's times are the median of ``--repeats`` runs. Agreement: per metric, how many
combinations agree (trade counts exactly, the rest within 1e-9 relative).

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/sweep.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PEERS_PY = ROOT / ".venv-peers" / "bin" / "python"
GRID = {"fast": list(range(5, 105)), "slow": list(range(20, 220, 2))}
VBT_SETTING = {"fill": "close", "fee": 0.001, "slippage": 0.0, "init_cash": 10_000.0}
REL_TOL = 1e-9

# Runs in the peers venv. Two jobs, each on the subset in column chunks (one from_signals call per
# chunk, the fastest chunking counts):
# * "simulation": vectorbt's portfolio simulation and final value only, on the strategy's own
#   signals built before the clock starts (vectorbt's most favourable case);
# * "same_output": what sweep() does, from the closes to the metrics table: vectorbt's moving
#   averages (each distinct period once), its crossings, the simulation and the 15 metrics of
#   metrics() below, so both sides produce the same numbers (compared column by column).
VBT_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, polars as pl, vectorbt as vbt
from vectorbt.generic.nb import crossed_above_nb
from quantdag.strategies import create_strategy
c = pl.read_parquet(sys.argv[2]); combos = json.loads(sys.argv[3])
REPEATS = json.loads(sys.argv[4]); CHUNKS = json.loads(sys.argv[5])
e = np.empty((c.height, len(combos)), np.bool_); x = np.empty_like(e)
for j, (f, s) in enumerate(combos):
    sig = create_strategy("sma_cross", {"fast": f, "slow": s}).signals(c)
    e[:, j] = sig["entry"].to_numpy(); x[:, j] = sig["exit"].to_numpy()
close1 = c["close"].to_numpy()
YEARS = c.height / 8760.0  # hourly candles, 365-day years (vectorbt's default year_freq)
out = {"vectorbt": vbt.__version__}

def metrics(pf):
    # vectorbt's own accessors; trade statistics over closed trades, as quantdag's. CAGR comes
    # from total_return in numpy: vectorbt's annualized_return is the same number, ~9 ms a
    # combination slower, so that saves vectorbt time.
    tr = pf.trades
    closed = tr.closed
    tot = np.asarray(pf.total_return(), float)
    mdd = -np.asarray(pf.max_drawdown(), float)
    cagr = np.where(tot > -1.0, np.abs(1.0 + tot) ** (1.0 / YEARS) - 1.0, -1.0)
    m = {"final_equity": pf.final_value(), "n_trades": tr.count(), "total_return": tot, "cagr": cagr,
         "volatility": pf.annualized_volatility(), "sharpe": pf.sharpe_ratio(), "sortino": pf.sortino_ratio(),
         "max_drawdown": mdd, "calmar": cagr / mdd,
         "max_drawdown_duration_bars": np.asarray(pf.drawdowns.max_duration()) / np.timedelta64(1, "h"),
         "win_rate": closed.win_rate(), "profit_factor": closed.profit_factor(), "expectancy": closed.expectancy(),
         "avg_trade_duration_bars": closed.duration.mean(), "exposure": pf.position_coverage()}
    return {k: np.asarray(v, dtype=float) for k, v in m.items()}

def simulation(chunk, kw, combos=combos):
    t, res = 0.0, []
    for a in range(0, len(combos), chunk):
        ee = np.ascontiguousarray(e[:, a:a + chunk]); xx = np.ascontiguousarray(x[:, a:a + chunk])
        cl = np.ascontiguousarray(np.repeat(close1[:, None], ee.shape[1], axis=1))
        t0 = time.perf_counter()
        pf = vbt.Portfolio.from_signals(cl, ee, xx, **kw)
        v = np.asarray(pf.final_value(), dtype=float)
        t += time.perf_counter() - t0
        res.append({"final_equity": v, "n_trades": np.asarray(pf.trades.count(), dtype=float)})
    return t, res

def same_output(chunk, kw, combos=combos):
    t0 = time.perf_counter()
    periods = sorted({p for fs in combos for p in fs})
    col = {p: i for i, p in enumerate(periods)}
    ma = vbt.MA.run(close1, window=periods).ma.to_numpy()  # each distinct average once
    res = []
    for a in range(0, len(combos), chunk):
        cc = combos[a:a + chunk]
        fast = ma[:, [col[f] for f, _ in cc]]; slow = ma[:, [col[s] for _, s in cc]]
        cl = np.repeat(close1[:, None], len(cc), axis=1)
        pf = vbt.Portfolio.from_signals(cl, crossed_above_nb(fast, slow), crossed_above_nb(slow, fast), **kw)
        res.append(metrics(pf))
    return time.perf_counter() - t0, res

def timed(job, chunks, repeats, kw):
    by_chunk = {}
    for chunk in chunks:
        runs = []
        for _ in range(repeats):  # median of repeats, like quantdag's side
            t, res = job(chunk, kw)
            runs.append(t)
        cols = {k: np.concatenate([r[k] for r in res]).tolist() for k in res[0]}
        by_chunk[chunk] = {"s": float(np.median(runs)), "runs_s": runs, "values": cols}
    best = min(by_chunk, key=lambda k: by_chunk[k]["s"])
    return {**by_chunk[best], "chunk": best, "s_by_chunk": {str(k): v["s"] for k, v in by_chunk.items()}}

for engine in ("rust", "numba"):
    kw = dict(fees=0.001, init_cash=10_000.0, size=np.inf, engine=engine, freq="1h")
    out[engine] = {}
    for name, job in (("simulation", simulation), ("same_output", same_output)):
        job(2, kw, combos[:2])  # JIT warm-up on the same array types and layouts as the timed runs
        out[engine][name] = timed(job, CHUNKS, REPEATS[engine], kw)
import resource
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def agreement(ours: pl.DataFrame, theirs: dict[str, list[float]]) -> dict[str, Any]:
    """Per metric: how many combinations agree (counts exactly, the rest within ``REL_TOL``
    relative; NaN agrees with NaN, inf with inf) and the largest relative difference."""
    out: dict[str, Any] = {"compared": ours.height}
    for name, values in theirs.items():
        a = ours[name].to_numpy().astype(float)
        b = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(a == b, 0.0, np.abs(a - b) / np.abs(b))
        same = (rel <= (0.0 if name == "n_trades" else REL_TOL)) | (np.isnan(a) & np.isnan(b))
        both_nan = np.isnan(a) & np.isnan(b)
        out[name] = {"agree": int(same.sum()), "max_rel_diff": float(np.nanmax(np.where(both_nan, 0.0, rel), initial=0.0))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candles", type=int, default=50_000)
    p.add_argument("--vbt-combos", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vbt-chunks", default="10,25,50,100,200",
                   help="vectorbt runs the subset in column chunks of each of these sizes; its fastest counts")
    args = p.parse_args(argv)
    from backtest import synthetic_candles

    import numba

    from quantdag.optimize import sweep
    from quantdag.optimize.grid import expand_grid

    c = synthetic_candles(args.candles)
    combos = expand_grid("sma_cross", GRID)
    report: dict[str, Any] = {
        "benchmark": "quantdag.optimize.sweep vs vectorbt, SMA cross grid",
        "grid": "fast 5..104 x slow 20..218 step 2", "grid_pairs": 100 * 100, "combos_fast_lt_slow": len(combos),
        "candles": c.height, "cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
        "loadavg_start": list(os.getloadavg()),
    }  # fmt: skip
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    sweep(c.head(2000), "sma_cross", {"fast": [5], "slow": [20]})
    report["first_call_s"] = time.perf_counter() - t0  # numba cache load (or compile) + imports
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        table = sweep(c, "sma_cross", GRID)
        times.append(time.perf_counter() - t0)
    report["quantdag_default_settings_s"] = {"median": float(np.median(times)), "min": float(np.min(times))}
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        table_close = sweep(c, "sma_cross", GRID, **VBT_SETTING)
        times.append(time.perf_counter() - t0)
    ours_s = float(np.median(times))
    report["quantdag_vbt_setting_s"] = {"median": ours_s, "min": float(np.min(times))}
    report["quantdag_rss_before_mb"] = rss0
    report["quantdag_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert table.height == len(combos)

    idx = np.unique(np.linspace(0, len(combos) - 1, args.vbt_combos).round().astype(int))
    subset = [(combos[i]["fast"], combos[i]["slow"]) for i in idx]
    if PEERS_PY.exists():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "candles.parquet"
            c.write_parquet(path)
            reps = {"rust": args.repeats, "numba": 1}  # numba takes up to ~7 s a run on the subset: once
            chunks = [int(k) for k in args.vbt_chunks.split(",")]
            out = subprocess.run([str(PEERS_PY), "-c", VBT_CODE, str(ROOT), str(path), json.dumps(subset), json.dumps(reps), json.dumps(chunks)],
                                 check=True, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        vbt = json.loads(out.stdout.strip().splitlines()[-1])
        ours = table_close[idx]
        scale = len(combos) / len(subset)
        report["vectorbt"] = {"version": vbt["vectorbt"], "combos_run": len(subset), "extrapolated_x": scale,
                              "peak_rss_mb": vbt["peak_rss_mb"]}  # fmt: skip
        for engine in ("rust", "numba"):
            report["vectorbt"][engine] = {}
            for job in ("simulation", "same_output"):
                r = vbt[engine][job]
                full_s = r["s"] * scale
                report["vectorbt"][engine][job] = {
                    "chunk_combos": r["chunk"], "subset_s_by_chunk": r["s_by_chunk"], "subset_s": r["s"],
                    "subset_runs_s": r["runs_s"], "full_grid_s_extrapolated": full_s, "speedup": full_s / ours_s,
                    "agreement": agreement(ours, r["values"]),
                }  # fmt: skip
    else:
        report["vectorbt"] = f"skipped: {PEERS_PY} missing (see benchmarks/peers.txt)"
    report["loadavg_end"] = list(os.getloadavg())
    report["targets"] = {
        "full_grid_le_1s": report["quantdag_default_settings_s"]["median"] <= 1.0,
        "peak_rss_le_500mb": report["quantdag_peak_rss_mb"] <= 500,
    }
    if isinstance(report["vectorbt"], dict):
        for job in ("simulation", "same_output"):
            best = min(report["vectorbt"][e][job]["full_grid_s_extrapolated"] for e in ("rust", "numba"))
            report["targets"][f"ge_100x_fastest_vectorbt_{job}"] = best / ours_s >= 100
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

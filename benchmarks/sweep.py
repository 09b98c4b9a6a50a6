"""Speed, memory and agreement of ``quantdag.optimize.sweep`` against vectorbt, in one run.
Prints one JSON line on stdout.

Grid: SMA crossover, fast 5..104 x slow 20..218 step 2 (10,000 pairs; the fast < slow
constraint leaves 8,151), on 50,000 synthetic hourly candles (``benchmarks/backtest.py``'s
generator). quantdag runs the whole grid with its default settings (next-open fills, 10 bps fee,
5 bps slippage) and again in vectorbt's setting (fill at close, 0.1 % fee, no slippage, all-in
long-only). vectorbt (rust and numba engines, ``Portfolio.from_signals`` on 2-D numpy arrays)
runs in the peers venv (``benchmarks/peers.txt``) in a subprocess, on an evenly spread subset of
the grid (``--vbt-combos``, default 200) with the strategy's own signals (built before the
clock starts, while quantdag's time includes its moving averages). vectorbt's time per
combination grows with the number of columns in one call (measured here: ~5-7 ms at 25-100 columns,
~8 ms at 200, ~12 ms at 1,000, ~17 ms at 2,000), so it runs the subset in column chunks of each
``--vbt-chunks`` size and its fastest chunking counts (rust: median of ``--repeats`` runs; numba:
one run, at rust's best chunk); that time is extrapolated linearly to the full grid, which is
exact for independent chunks (stated in the output). quantdag's times are the median of
``--repeats`` runs. Agreement: every subset combination's final equity within 1e-9 relative and the same trade count.

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

# Runs in the peers venv: build the subset's signals with the strategy, time vectorbt.
VBT_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, polars as pl, vectorbt as vbt
from quantdag.strategies import create_strategy
c = pl.read_parquet(sys.argv[2]); combos = json.loads(sys.argv[3])
REPEATS = json.loads(sys.argv[4]); CHUNKS = json.loads(sys.argv[5])
e = np.empty((c.height, len(combos)), np.bool_); x = np.empty_like(e)
for j, (f, s) in enumerate(combos):
    sig = create_strategy("sma_cross", {"fast": f, "slow": s}).signals(c)
    e[:, j] = sig["entry"].to_numpy(); x[:, j] = sig["exit"].to_numpy()
close1 = c["close"].to_numpy()
out = {"vectorbt": vbt.__version__}

def chunked(chunk, kw):
    # the subset in column chunks of `chunk` combos, one from_signals call each (inputs built
    # before the clock starts); returns the summed time, final values and trade counts
    t, fv, nt = 0.0, [], []
    for a in range(0, len(combos), chunk):
        ee = np.ascontiguousarray(e[:, a:a + chunk]); xx = np.ascontiguousarray(x[:, a:a + chunk])
        cl = np.ascontiguousarray(np.repeat(close1[:, None], ee.shape[1], axis=1))
        t0 = time.perf_counter()
        pf = vbt.Portfolio.from_signals(cl, ee, xx, **kw)
        v = np.asarray(pf.final_value(), dtype=float)
        t += time.perf_counter() - t0
        fv += v.tolist(); nt += np.asarray(pf.trades.count(), dtype=int).tolist()
    return t, fv, nt

best_chunk = None
for engine in ("rust", "numba"):
    kw = dict(fees=0.001, init_cash=10_000.0, size=np.inf, engine=engine, freq="1h")
    vbt.Portfolio.from_signals(np.repeat(close1[:500, None], 2, axis=1), e[:500, :2], x[:500, :2], **kw)  # JIT / warm-up
    by_chunk = {}
    for chunk in (CHUNKS if engine == "rust" else [best_chunk]):
        runs = []
        for _ in range(REPEATS[engine]):  # median of repeats, like quantdag's side
            t, fv, nt = chunked(chunk, kw)
            runs.append(t)
        by_chunk[chunk] = {"s": float(np.median(runs)), "runs_s": runs, "final_equity": fv, "n_trades": nt}
    best_chunk = min(by_chunk, key=lambda k: by_chunk[k]["s"])
    out[engine] = {**by_chunk[best_chunk], "chunk": best_chunk, "s_by_chunk": {str(k): v["s"] for k, v in by_chunk.items()}}
import resource
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candles", type=int, default=50_000)
    p.add_argument("--vbt-combos", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vbt-chunks", default="25,50,100,200",
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
            reps = {"rust": args.repeats, "numba": 1}  # numba takes ~10 s a run on the subset: once
            chunks = [int(k) for k in args.vbt_chunks.split(",")]
            out = subprocess.run([str(PEERS_PY), "-c", VBT_CODE, str(ROOT), str(path), json.dumps(subset), json.dumps(reps), json.dumps(chunks)],
                                 check=True, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        vbt = json.loads(out.stdout.strip().splitlines()[-1])
        ours_fe = table_close["final_equity"].to_numpy()[idx]
        ours_nt = table_close["n_trades"].to_numpy()[idx]
        scale = len(combos) / len(subset)
        report["vectorbt"] = {"version": vbt["vectorbt"], "combos_run": len(subset), "extrapolated_x": scale,
                              "peak_rss_mb": vbt["peak_rss_mb"]}  # fmt: skip
        for engine in ("rust", "numba"):
            fe = np.array(vbt[engine]["final_equity"])
            nt = np.array(vbt[engine]["n_trades"])
            rel = np.abs(ours_fe - fe) / np.abs(fe)
            full_s = vbt[engine]["s"] * scale
            report["vectorbt"][engine] = {
                "chunk_combos": vbt[engine]["chunk"], "subset_s_by_chunk": vbt[engine]["s_by_chunk"],
                "subset_s": vbt[engine]["s"], "subset_runs_s": vbt[engine]["runs_s"], "full_grid_s_extrapolated": full_s, "speedup": full_s / ours_s,
                "agree_final_equity_1e-9": int((rel <= REL_TOL).sum()), "agree_n_trades": int((nt == ours_nt).sum()),
                "compared": len(subset), "max_rel_diff": float(rel.max()),
            }  # fmt: skip
    else:
        report["vectorbt"] = f"skipped: {PEERS_PY} missing (see benchmarks/peers.txt)"
    report["loadavg_end"] = list(os.getloadavg())
    report["targets"] = {
        "full_grid_le_1s": report["quantdag_default_settings_s"]["median"] <= 1.0,
        "peak_rss_le_500mb": report["quantdag_peak_rss_mb"] <= 500,
    }
    if isinstance(report["vectorbt"], dict):
        best = min(report["vectorbt"][e]["full_grid_s_extrapolated"] for e in ("rust", "numba"))
        report["targets"]["ge_100x_fastest_vectorbt"] = best / ours_s >= 100
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

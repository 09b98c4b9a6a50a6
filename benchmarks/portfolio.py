"""Speed and agreement of ``quantdag.portfolio.run_portfolio`` against vectorbt's
``Portfolio.from_orders`` (numba and rust engines), in the same process on the same data. Prints
one JSON line on stdout. Runs in the peers venv (see ``benchmarks/backtest.py``)::

    .venv-peers/bin/python benchmarks/portfolio.py
    .venv-peers/bin/python benchmarks/portfolio.py --budget 1 --skip-large   # quicker

Data: seeded hourly GBM per market (vols 0.3..1.2 %/h), opens gapped from the previous close.
Weights are stamped for every market every 24 candles (no rows between stamps: units kept), long,
summing to <= 0.95 so no buy is cut for cash; the ``shorts`` variant flips ~30 % negative at random.

Rules (``run_portfolio``'s defaults): a weight stamped at t trades at t+1's open; units = weight x
value / open, value = cash + sum(units x open) before any order; sells first; fills open x (1 +/-
slippage), fee = fee x qty x fill, one cash. vectorbt equivalent: ``size`` = the weights one row
later (NaN = no order), ``size_type="targetpercent"``, ``price=open``, ``val_price=open`` (the value
at the open: the previous close or the close are off by 1e-3..1e-1), ``update_value=False`` (value
fixed during the row: ``True`` is off by ~1e-3), ``cash_sharing=True``, ``group_by=True``,
``call_seq="auto"`` (sells first), ``direction="both"``, ``lock_cash=False`` (short proceeds are
cash), ``fees``, ``slippage``. Agreement = same order count, final equity and whole equity curve
within 1e-9 relative.

Timed (warm; median, min of repeats within a budget): ``quantdag`` = ``run_portfolio`` on the long
polars frames (checks, wide arrays, kernel, result frames, metrics); ``vectorbt_*`` =
``from_orders`` on numpy arrays built outside the timing. ``speedup`` = fastest vectorbt / quantdag.
``breakdown`` splits ``run_portfolio`` by timing the engine's helpers (checks, index, scatter, the
``simulate`` kernel) and what follows the kernel (result frames). ``jit``: a fresh interpreter's
import and first call (numba cache warm). The machine is shared: ``loadavg`` is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# benchmarks/ is sys.path[0] when run as a script
from backtest import time_it, versions

from quantdag.portfolio import engine, run_portfolio

REL_TOL = 1e-9
INIT_CASH, FEE, SLIPPAGE, EVERY = 10_000.0, 0.001, 0.0005, 24
HOUR_MS, START_MS = 3_600_000, 1_577_836_800_000


# -- data ---------------------------------------------------------------------------------------
def gbm(m: int, n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Wide (n, m) opens and closes: zero-drift GBM closes, opens = previous close x a small gap."""
    rng = np.random.default_rng(seed)
    vol = np.linspace(0.003, 0.012, m)
    close = 100.0 * np.exp(np.cumsum(rng.normal(-0.5 * vol**2, vol, (n, m)), axis=0))
    open_ = np.vstack([np.full((1, m), 100.0), close[:-1]]) * np.exp(rng.normal(0.0, 0.2 * vol, (n, m)))
    return open_, close


def target_weights(n: int, m: int, shorts: bool, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Stamp rows (every ``EVERY`` candles) and their weights: a persistent random walk on the
    simplex, gross 0.5..0.95, ~10 % of markets at 0 (closed) each time."""
    rng = np.random.default_rng(seed)
    rows = np.arange(0, n, EVERY)
    fresh = rng.dirichlet(np.ones(m), len(rows)) * rng.uniform(0.5, 0.95, (len(rows), 1))
    w = np.empty_like(fresh)
    w[0] = fresh[0]
    for k in range(1, len(rows)):
        w[k] = 0.7 * w[k - 1] + 0.3 * fresh[k]
    w[rng.random(w.shape) < 0.1] = 0.0
    if shorts:
        w *= np.where(rng.random(w.shape) < 0.3, -1.0, 1.0)
    return rows, w


def long_frames(open_: np.ndarray, close: np.ndarray, rows: np.ndarray, w: np.ndarray) -> tuple[pl.DataFrame, ...]:
    """What users pass: long candles (ts, symbol, OHLCV) and long weights (ts, symbol, weight)."""
    n, m = open_.shape
    symbols = np.array([f"M{j:03d}" for j in range(m)])
    ts = pl.Series("ts", START_MS + np.arange(n, dtype=np.int64) * HOUR_MS).cast(pl.Datetime("ms", "UTC"))
    candles = pl.DataFrame({
        "ts": ts.gather(np.repeat(np.arange(n), m)), "symbol": np.tile(symbols, n), "open": open_.ravel(),
        "high": np.maximum(open_, close).ravel(), "low": np.minimum(open_, close).ravel(), "close": close.ravel(),
        "volume": np.ones(n * m),
    })  # fmt: skip
    stamps = ts.gather(np.repeat(rows, m))
    weights = pl.DataFrame({"ts": stamps, "symbol": np.tile(symbols, len(rows)), "weight": w.ravel()})
    return candles, weights


# -- engines ------------------------------------------------------------------------------------
def quantdag_runner(candles: pl.DataFrame, weights: pl.DataFrame) -> Callable[[], Any]:
    return lambda: run_portfolio(candles, weights, fee=FEE, slippage=SLIPPAGE, init_cash=INIT_CASH)


def vectorbt_runner(open_: np.ndarray, close: np.ndarray, rows: np.ndarray, w: np.ndarray, eng: str) -> Callable:
    import vectorbt as vbt

    size = np.full(open_.shape, np.nan)  # an order only on the candle after a stamp
    keep = rows + 1 < open_.shape[0]
    size[rows[keep] + 1] = w[keep]
    return lambda: vbt.Portfolio.from_orders(
        close, size=size, size_type="targetpercent", direction="both", price=open_, val_price=open_, fees=FEE,
        slippage=SLIPPAGE, lock_cash=False, cash_sharing=True, group_by=True, call_seq="auto",
        update_value=False, init_cash=INIT_CASH, freq="1h", engine=eng,
    )  # fmt: skip


def agreement(res: Any, pf: Any) -> dict[str, Any]:
    ours, theirs = res.final_equity, float(pf.final_value())
    n_ours, n_theirs = res.trades.height, int(pf.orders.count())
    rel = abs(ours - theirs) / abs(theirs)
    curve = res.equity["equity"].to_numpy()
    curve_rel = float(np.max(np.abs(curve - pf.value().to_numpy()) / curve))
    return {"orders": [n_ours, n_theirs], "final_equity": [ours, theirs], "rel_diff": rel,
            "equity_curve_max_rel_diff": curve_rel,
            "ok": n_ours == n_theirs and max(rel, curve_rel) <= REL_TOL}  # fmt: skip


# -- where run_portfolio's time goes --------------------------------------------------------------
#: engine helpers timed when the engine has them (older engines: _wide = a pivot and a join per value)
STAGES = ("_check_columns", "_index", "_no_duplicates", "_scatter", "_wide", "simulate")


def breakdown(candles: pl.DataFrame, weights: pl.DataFrame, reps: int = 5) -> dict[str, float]:
    """Median ms per stage of ``reps`` runs: each helper in :data:`STAGES` the engine has is wrapped
    (whatever its arguments) and timed; ``results`` = after the kernel returns (result frames,
    attribution, metrics); ``other`` = the rest (grid, casts, weight loop)."""
    marks: list[tuple[str, float, float]] = []

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            out = fn(*a, **k)
            marks.append((name, t0, time.perf_counter()))
            return out

        return inner

    saved = {k: getattr(engine, k) for k in STAGES if hasattr(engine, k)}
    runs: list[dict[str, float]] = []
    try:
        for k, fn in saved.items():
            setattr(engine, k, wrap(k, fn))
        for _ in range(reps):
            marks.clear()
            t0 = time.perf_counter()
            quantdag_runner(candles, weights)()
            t1 = time.perf_counter()
            got = {f"{k.strip('_')}_ms": sum(e - s for n, s, e in marks if n == k) for k in saved}
            got["results_ms"] = t1 - max(e for n, _, e in marks if n == "simulate")
            got["other_ms"] = t1 - t0 - sum(got.values())
            got["total_ms"] = t1 - t0
            runs.append(got)
    finally:
        for k, fn in saved.items():
            setattr(engine, k, fn)
    return {k: float(np.median([r[k] for r in runs])) * 1e3 for k in runs[0]}


def jit_first_call() -> dict[str, float]:
    """A fresh interpreter's import and first ``run_portfolio`` (numba cache warm from this process)."""
    code = (
        "import time; t0=time.perf_counter(); import numpy as np, polars as pl; "
        "from quantdag.portfolio import run_portfolio; t1=time.perf_counter(); n=200; "
        "ts=pl.Series(np.arange(n,dtype=np.int64)*3600000).cast(pl.Datetime('ms','UTC')); p=np.linspace(1,2,n); "
        "c=pl.DataFrame({'ts':ts,'symbol':'A','open':p,'high':2.0,'low':1.0,'close':p,'volume':1.0}); "
        "run_portfolio(c, pl.DataFrame({'ts':ts[:1],'symbol':['A'],'weight':[0.5]})); "
        "t2=time.perf_counter(); print(t1-t0, t2-t1)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    imp, first = (float(v) for v in out.stdout.split())
    return {"import_s": imp, "first_run_s": first}


# -- cases --------------------------------------------------------------------------------------
def case_vs_vectorbt(m: int, n: int, budget_s: float) -> dict[str, Any]:
    open_, close = gbm(m, n)
    out: dict[str, Any] = {"markets": m, "candles_per_market": n, "rebalance_every": EVERY, "agree": {}}
    for variant in ("long_only", "shorts"):
        rows, w = target_weights(n, m, shorts=variant == "shorts")
        candles, weights = long_frames(open_, close, rows, w)
        runners = {"quantdag": quantdag_runner(candles, weights)}
        runners |= {f"vectorbt_{e}": vectorbt_runner(open_, close, rows, w, e) for e in ("numba", "rust")}
        print(f"[{m}x{n} {variant}] first calls", file=sys.stderr, flush=True)
        first = {k: fn() for k, fn in runners.items()}  # JIT warm-up and the results compared
        out["agree"][variant] = {k: agreement(first["quantdag"], first[k]) for k in runners if k != "quantdag"}
        if variant == "long_only":
            out["max_abs_weight_sum"] = float(np.abs(w).sum(axis=1).max())
            out["n_cut_for_cash"] = first["quantdag"].metrics.get("n_cut_for_cash")
            print(f"[{m}x{n}] timing", file=sys.stderr, flush=True)
            ms = {k: time_it(fn, budget_s) for k, fn in runners.items()}
            out["ms"] = ms
            fastest = min(ms["vectorbt_numba"]["median_ms"], ms["vectorbt_rust"]["median_ms"])
            out["speedup"] = fastest / ms["quantdag"]["median_ms"]
            out["speedup_vs"] = {k: ms[k]["median_ms"] / ms["quantdag"]["median_ms"] for k in ms if k != "quantdag"}
            out["breakdown"] = breakdown(candles, weights)
            out["speedup_kernel_only"] = fastest / out["breakdown"]["simulate_ms"]
    return out


def case_large(m: int, n: int) -> dict[str, Any]:
    open_, close = gbm(m, n, seed=3)
    candles, weights = long_frames(open_, close, *target_weights(n, m, shorts=False, seed=5))
    run = quantdag_runner(candles, weights)
    print(f"[{m}x{n}] first call and timing", file=sys.stderr, flush=True)
    res = run()
    times = [time_it(run, 0.0)["median_ms"] for _ in range(3)]  # a call can exceed the budget: 3 calls
    ms = {"median_ms": float(np.median(times)), "min_ms": min(times), "reps": 3}
    return {"markets": m, "candles_per_market": n, "rows": candles.height, "orders": res.trades.height,
            "final_equity": res.final_equity, "ms": ms, "breakdown": breakdown(candles, weights, reps=3),
            "under_2s": ms["median_ms"] < 2000}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=3.0, help="seconds of repeats per engine and case")
    p.add_argument("--skip-large", action="store_true", help="skip the 100-market x 5-year case")
    args = p.parse_args(argv)
    report: dict[str, Any] = {
        "benchmark": "quantdag.portfolio.run_portfolio vs vectorbt Portfolio.from_orders (numba, rust)",
        "setting": f"target weights every {EVERY} 1h candles, filled next open, fee {FEE}, slippage {SLIPPAGE}, "
                   f"one cash {INIT_CASH:g}, sells first",
        "python": platform.python_version(), "cpus": os.cpu_count(), "versions": versions(),
        "loadavg_start": list(os.getloadavg()),
    }  # fmt: skip
    c1 = report["case1_20x50k_vs_vectorbt"] = case_vs_vectorbt(20, 50_000, args.budget)
    if not args.skip_large:
        report["case2_100x43830_quantdag"] = case_large(100, 43_830)
    report["jit"] = jit_first_call()
    report["loadavg_end"] = list(os.getloadavg())
    report["all_agree"] = all(a["ok"] for v in c1["agree"].values() for a in v.values())
    report["targets"] = {"case1_speedup_ge_20x": c1["speedup"] >= 20.0,
                         "case2_lt_2s": report.get("case2_100x43830_quantdag", {}).get("under_2s")}  # fmt: skip
    print(json.dumps(report, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

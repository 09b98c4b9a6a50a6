"""Speed and agreement of ``quantdag.backtest`` against vectorbt (numba and rust engines) and
backtesting.py, in the same process on the same data. Prints one JSON line on stdout.

The peers need pandas >= 3, which the project's dagster stack does not allow, so they live in a
separate venv built from ``benchmarks/peers.txt``; this script installs nothing::

    uv venv .venv-peers --python 3.11
    VIRTUAL_ENV=.venv-peers uv pip install -r benchmarks/peers.txt
    .venv-peers/bin/python benchmarks/backtest.py                 # 100k and 1M candles
    .venv-peers/bin/python benchmarks/backtest.py --sizes 100000  # quicker

Comparison setting (the only one all three engines share): SMA(10/50) crossover signals
computed once, fill at the signal candle's close, 0.1 % fee per side, no slippage, all-in,
long-only, 10,000 cash. Agreement = same number of trades (closed + the one still open) and
final equity within 1e-9 relative.

Times are per backtest, warm (JIT done), median (and min) of repeats within a time budget, all
engines on the same candles in this process. What is timed: ``quantdag`` = ``run(...)`` from a
polars frame (validation, kernel, result object; frames and metrics are lazy); vectorbt =
``Portfolio.from_signals`` on numpy arrays (its fastest input form); backtesting.py =
``Backtest.run()`` (its stats are computed inside). ``quantdag_stops_sizing`` is ``run`` with the
default next-open fills and costs plus stop-loss, take-profit, trailing stop, fixed-fraction
sizing, volatility slippage and a volume cap; ``quantdag_kernel_stops_sizing`` is its numba
kernel alone. ``jit`` is a fresh interpreter's import and first ``run`` with the numba cache warm.
The machine is shared: ``loadavg`` is recorded next to the times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numba import njit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from quantdag.backtest import enums, nb, run  # noqa: E402
from quantdag.backtest.engine import load_market  # noqa: E402

REL_TOL = 1e-9
INIT_CASH, FEE = 10_000.0, 0.001
HOUR_MS = 3_600_000


# -- data ---------------------------------------------------------------------------------------
@njit(cache=True)
def _garch_trend_path(
    z: np.ndarray, eps: np.ndarray, kappa: float, phi: float, base_var: float
) -> tuple[np.ndarray, np.ndarray]:
    n = z.shape[0]
    r, var = np.empty(n), np.empty(n)
    v, mu, lp = base_var, 0.0, 0.0
    for i in range(n):
        mu = phi * mu + eps[i]  # slowly wandering drift: trends an SMA cross can follow
        var[i] = v
        shock = np.sqrt(v) * z[i]
        r[i] = mu - kappa * lp + shock  # weak pull back to the start keeps the price range sane
        lp += r[i]
        v = base_var * 0.02 + 0.08 * shock * shock + 0.90 * v  # GARCH(1,1) volatility clustering
    return r, var


def synthetic_candles(n: int, seed: int = 7, step_ms: int = HOUR_MS, start_price: float = 30_000.0) -> pl.DataFrame:
    """Crypto-like hourly candles: Student-t GARCH(1,1) returns around a slowly wandering drift,
    weakly mean-reverting in log price (a million candles stay within ~1e3..1e6), with wicks
    and lognormal volume. An SMA(10/50) cross neither wins nor goes bust on it."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(5, n) * np.sqrt(3 / 5)
    phi, trend_sd = 0.999, 3e-4
    r, var = _garch_trend_path(z, rng.normal(0.0, trend_sd * np.sqrt(1 - phi**2), n), 3e-4, phi, 0.008**2)
    close = start_price * np.exp(np.cumsum(r))
    open_ = np.r_[start_price, close[:-1]] * np.exp(rng.normal(0, 0.0005, n))
    wick = np.sqrt(var) * np.abs(rng.normal(0, 0.6, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(3.0, 0.8, n)
    ts = pl.Series("ts", 1_577_836_800_000 + np.arange(n, dtype=np.int64) * step_ms).cast(pl.Datetime("ms", "UTC"))
    return pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume})


def real_candles(exchange: str, market: str, timeframe: str) -> pl.DataFrame:
    """One shared parquet file (``../shared/data``) as the engine's candle frame."""
    path = (ROOT / ".." / "shared" / "data" / exchange / f"{market}-{timeframe}.parquet").resolve()
    df = pl.read_parquet(path)
    ts = df["ts"]
    if ts.dtype.is_integer():
        ts = pl.from_epoch(ts, time_unit="ms")
    ts = ts.dt.cast_time_unit("ms").dt.replace_time_zone("UTC")
    return df.with_columns(ts.alias("ts")).select(
        "ts", *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume"))
    )


def sma_cross(close: np.ndarray, fast: int = 10, slow: int = 50) -> tuple[np.ndarray, np.ndarray, bool]:
    """Crossover entries/exits; signals on the last candle are cleared (backtesting.py cannot act
    on them), and the third value says whether that happened."""

    def sma(p: int) -> np.ndarray:
        cs = np.cumsum(np.r_[0.0, close])
        out = np.full(close.shape[0], np.nan)
        out[p - 1 :] = (cs[p:] - cs[:-p]) / p
        return out

    f, s = sma(fast), sma(slow)
    above, ok = f > s, ~np.isnan(s)
    prev_above, prev_ok = np.r_[False, above[:-1]], np.r_[False, ok[:-1]]
    entries = above & ~prev_above & ok & prev_ok
    exits = ~above & prev_above & ok & prev_ok
    cleared = bool(entries[-1] or exits[-1])
    entries[-1] = exits[-1] = False
    return entries, exits, cleared


# -- engines (each returns final equity and trade count, open trade included) -----------------
def quantdag_close(c: pl.DataFrame, e: np.ndarray, x: np.ndarray) -> tuple[float, int]:
    res = run(c, e, x, fill="close", fee=FEE, slippage=0.0, init_cash=INIT_CASH)
    return res.final_equity, int(res.stats[enums.S_N_TRADES])


def quantdag_stops_sizing(c: pl.DataFrame, e: np.ndarray, x: np.ndarray) -> tuple[float, int]:
    res = run(
        c, e, x, stop_loss=0.02, take_profit=0.05, trailing_stop=0.03, sizing="fixed_fraction", size=0.9,
        slippage_model="volatility", max_volume_share=0.1, init_cash=INIT_CASH,
    )  # fmt: skip
    return res.final_equity, int(res.stats[enums.S_N_TRADES])


def kernel_only(c: pl.DataFrame, e: np.ndarray, x: np.ndarray) -> Callable[[], float]:
    """The numba kernel alone (inputs validated once) in the same configuration as
    :func:`quantdag_stops_sizing`, recording everything."""
    m = load_market(c)
    n = m.close.shape[0]
    z = np.zeros(n, dtype=np.bool_)
    size, slip = np.full(1, 0.9), np.full(1, 0.0005)

    def call() -> float:
        return nb.simulate_nb(
            m.open, m.high, m.low, m.close, m.volume, e, x, z, z, np.zeros(0), size, slip, enums.MODE_SIGNALS,
            enums.FILL_NEXT_OPEN, enums.SIZE_PERCENT, INIT_CASH, FEE, 0.02, 0.05, 0.03, 1.0, 0.1, 0.1,
            np.empty((n, enums.N_MARK_FIELDS)), np.empty((n, enums.N_TRADE_FIELDS)), np.zeros(enums.N_STATS),
        )  # fmt: skip

    return call


def vectorbt_runner(c: pl.DataFrame, e: np.ndarray, x: np.ndarray, engine: str) -> Callable[[], Any]:
    """``Portfolio.from_signals`` on plain numpy arrays: its fastest input form (a tz-aware
    pandas index costs it ~0.4 s per call under pandas 3)."""
    import vectorbt as vbt

    close = c["close"].to_numpy()

    def call() -> Any:
        pf = vbt.Portfolio.from_signals(
            close, e, x, fees=FEE, init_cash=INIT_CASH, size=np.inf, engine=engine, freq="1h"
        )
        assert pf.engine == engine
        return pf

    return call


def vectorbt_result(pf: Any) -> tuple[float, int]:
    return float(pf.final_value()), int(pf.trades.count())


def backtesting_runner(c: pl.DataFrame, e: np.ndarray, x: np.ndarray) -> Callable[[], tuple[float, int]]:
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    frame = pd.DataFrame(
        {k.capitalize(): c[k].to_numpy() for k in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex(c["ts"].to_numpy()),
    )

    class Signals(Strategy):
        entries: np.ndarray = e
        exits: np.ndarray = x

        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            if self.entries[i] and not self.position:
                self.buy()
            elif self.exits[i] and self.position:
                self.position.close()

    # 2**-40 units: exact scaling of prices, and the integer sizing floor costs < 1e-12 relative
    bt = FractionalBacktest(
        frame, Signals, cash=INIT_CASH, commission=FEE, trade_on_close=True, fractional_unit=2.0**-40,
        finalize_trades=False,
    )  # fmt: skip

    def call() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bt.run()

    return call


def backtesting_result(stats: Any) -> tuple[float, int]:
    return float(stats["Equity Final [$]"]), len(stats["_trades"]) + len(stats["_strategy"].trades)


# -- measuring ----------------------------------------------------------------------------------
def time_it(fn: Callable[[], Any], budget_s: float, max_reps: int = 200) -> dict[str, float]:
    """Warm call excluded; repeats until the budget is spent (at least 1, at most ``max_reps``)."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < max_reps and (not times or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_ms": float(np.median(times)) * 1e3, "min_ms": float(np.min(times)) * 1e3, "reps": len(times)}


def agreement(ours: tuple[float, int], theirs: tuple[float, int]) -> dict[str, Any]:
    rel = abs(ours[0] - theirs[0]) / abs(theirs[0])
    return {"trades": [ours[1], theirs[1]], "final_equity": [ours[0], theirs[0]], "rel_diff": rel,
            "ok": ours[1] == theirs[1] and rel <= REL_TOL}  # fmt: skip


def jit_first_call() -> dict[str, float]:
    """A fresh interpreter's import and first ``run`` (numba cache warm from this process)."""
    code = (
        "import time; t0=time.perf_counter(); import numpy as np, polars as pl; import quantdag.backtest as bt; "
        "t1=time.perf_counter(); n=500; c=100*np.exp(np.cumsum(np.random.default_rng(0).normal(0,.01,n))); "
        "df=pl.DataFrame({'ts':np.arange(n,dtype=np.int64)*3600000,'open':c,'high':c*1.01,'low':c*.99,'close':c,"
        "'volume':np.ones(n)}); bt.run(df, c>np.roll(c,1), c<np.roll(c,1), stop_loss=.02, trailing_stop=.03); "
        "t2=time.perf_counter(); print(t1-t0, t2-t1)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    imp, first = (float(v) for v in out.stdout.split())
    return {"import_s": imp, "first_run_s": first}


def compare(c: pl.DataFrame, budget_s: float, peers: bool = True, label: str = "") -> dict[str, Any]:
    """Run every engine once on ``c``, check agreement, then time each within ``budget_s``."""
    e, x, cleared = sma_cross(c["close"].to_numpy())
    runners: dict[str, Callable[[], Any]] = {
        "quantdag": lambda: quantdag_close(c, e, x),
        "quantdag_stops_sizing": lambda: quantdag_stops_sizing(c, e, x),
        "quantdag_kernel_stops_sizing": kernel_only(c, e, x),
    }
    if peers:
        runners["vectorbt_rust"] = vectorbt_runner(c, e, x, "rust")
        runners["vectorbt_numba"] = vectorbt_runner(c, e, x, "numba")
        runners["backtesting_py"] = backtesting_runner(c, e, x)
    extract: dict[str, Callable[[Any], tuple[float, int]]] = {
        "vectorbt_rust": vectorbt_result, "vectorbt_numba": vectorbt_result, "backtesting_py": backtesting_result,
    }  # fmt: skip
    results = {}
    for name, fn in runners.items():
        print(f"[{label}] {name}: first call", file=sys.stderr, flush=True)
        raw = fn()  # warm-up (JIT) and the result compared below; timed calls do only the simulation
        results[name] = extract[name](raw) if name in extract else raw
    out: dict[str, Any] = {
        "candles": c.height,
        "last_candle_signal_cleared": cleared,
        "n_trades": results["quantdag"][1],
    }
    out["agree"] = {
        k: agreement(results["quantdag"], results[k]) for k in runners if k.startswith(("vectorbt", "backtesting"))
    }
    if budget_s > 0:
        ms = {}
        for name, fn in runners.items():
            print(f"[{label}] {name}: timing", file=sys.stderr, flush=True)
            ms[name] = time_it(fn, budget_s if not name.startswith("backtesting") else min(budget_s, 1.0))
        out["ms"] = ms
        base = ms["quantdag"]["median_ms"]
        out["speedup_vs"] = {k: ms[k]["median_ms"] / base for k in ms if not k.startswith("quantdag")}
        if peers:
            fastest_vbt = min(ms["vectorbt_rust"]["median_ms"], ms["vectorbt_numba"]["median_ms"])
            out["stops_sizing_speedup_vs_fastest_vectorbt"] = fastest_vbt / ms["quantdag_stops_sizing"]["median_ms"]
    return out


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("numpy", "numba", "polars", "pandas", "vectorbt", "vectorbt-rust", "backtesting"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--budget", type=float, default=3.0, help="seconds of repeats per engine and size")
    args = p.parse_args(argv)
    report: dict[str, Any] = {
        "benchmark": "quantdag.backtest vs vectorbt (rust, numba) and backtesting.py",
        "setting": "SMA(10/50) cross, fill at close, fee 0.1%/side, no slippage, all-in long-only, cash 10000",
        "python": platform.python_version(), "cpus": os.cpu_count(), "versions": versions(),
        "loadavg_start": list(os.getloadavg()),
    }  # fmt: skip
    sizes = {}
    for n in args.sizes:
        sizes[str(n)] = compare(synthetic_candles(n), args.budget, label=f"{n:,}")
    report["sizes"] = sizes
    report["jit"] = jit_first_call()
    report["loadavg_end"] = list(os.getloadavg())
    k100 = sizes.get("100000")
    if k100:
        report["targets"] = {
            "stops_sizing_100k_le_2ms": k100["ms"]["quantdag_stops_sizing"]["median_ms"] <= 2.0,
            "stops_sizing_ge_10x_fastest_vectorbt": k100["stops_sizing_speedup_vs_fastest_vectorbt"] >= 10.0,
            "first_run_lt_2s_warm_cache": report["jit"]["first_run_s"] < 2.0,
        }
    report["all_agree"] = all(a["ok"] for s in sizes.values() for a in s["agree"].values())
    print(json.dumps(report, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

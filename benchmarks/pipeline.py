"""Pipeline throughput benchmark (issue #15): prints ONE JSON line.

Everything runs as users run it: the jobs of ``pipelines.definitions.build_defs`` through
``pipelines.demo``'s runners, on a persistent Dagster instance written by ``pipelines.instance`` (as ``make demo`` writes it)
(the one ``make demo`` and ``make ui`` use), real ccxt over HTTP to the simulator, a fresh DuckDB
file and a real MLflow store, Dagster's and MLflow's logging included.

1. data: 365 days x 10 markets of 1h candles (each also resampled to 4h and 1d) through
   ``daily_data_job`` (raw candles -> candles -> indicators). Target < 60 s.
   Floor: the engine alone on the same candles (normalization kernel + every configured
   indicator, in memory).
2. backtests: 100 parameter sets x 3 research markets through ``backtest_job`` (signals with the
   look-ahead gate, backtests stored in DuckDB, one MLflow run per backtest with its artifacts).
   Target < 60 s (<= 200 ms per backtest). Floor: the 300 ``quantdag.backtest.run`` calls alone.
3. data normalization throughput on 1M raw candles (benchmarks/normalize.py), > 5 M candles/s.

Run: ``.venv/bin/python benchmarks/pipeline.py`` (or ``make bench``); ``--days`` and
``--param-sets`` shrink it for a quick look.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

#: Four more simulated majors beside the simulator's default six: ten 1h markets.
EXTRA = (("XRP/USDT", 0.6, 4, 1, 0.045), ("ADA/USDT", 0.45, 4, 1, 0.05), ("DOGE/USDT", 0.15, 5, 0, 0.06),
         ("AVAX/USDT", 35.0, 2, 2, 0.055))  # fmt: skip


HOUR_MS = 3_600_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sim_markets():
    from quantdag.sim import DEFAULT_MARKETS, SimMarket

    extra = tuple(
        SimMarket(sym, px, pd, qd, daily_volume=5_000_000.0, avg_trade_size=50.0, daily_vol=vol, beta=1.2,
                  jumps_per_day=0.3, jump_size=0.012, spread_bps=1.0)
        for sym, px, pd, qd, vol in EXTRA
    )  # fmt: skip
    return DEFAULT_MARKETS + extra


def _param_sets(n: int) -> list[dict]:
    """``n`` parameter sets over four strategies' grids (distinct keys, deterministic)."""
    out: list[dict] = []
    fast_slow = [(f, s) for f in range(4, 40, 3) for s in range(20, 140, 10) if f < s]
    rsi = [(p, lo) for p in (7, 10, 14, 21) for lo in (20, 25, 30, 35)]
    for f, s in fast_slow[: n // 2]:
        out.append({"strategy": "sma_cross", "params": {"fast": f, "slow": s}})
    for p, lo in rsi[: n // 4]:
        out.append({"strategy": "rsi", "params": {"period": p, "oversold": lo, "overbought": 100 - lo}})
    for f, s in fast_slow[n // 2 : n // 2 + (n - len(out))]:
        out.append({"strategy": "sma_cross", "params": {"fast": f, "slow": s}})
    return out[:n]


def _config(days: int, n_param_sets: int, data_dir: Path):
    import yaml

    from quantdag.config import DEFAULT_CONFIG_PATH, parse_config

    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["data_dir"] = str(data_dir)
    data["universe"]["start_date"] = f"{days + 1}d"
    data["universe"]["markets"] = [
        {"symbol": m.symbol, "timeframes": ["1h"], "resampled": ["4h", "1d"]} for m in _sim_markets()
    ]
    data["strategies"] = {"defaults": False, "param_sets": _param_sets(n_param_sets), "paper": []}
    return parse_config(data, source=DEFAULT_CONFIG_PATH)


def _engine_data_floor(wh, config) -> float:
    """Seconds for the engine alone on the stored raw candles: clean, resample, indicators (in memory)."""
    from quantdag.data import clean_candles, resample
    from quantdag.features import compute_indicators

    specs = config.indicator_specs()
    raw = wh.query("SELECT * FROM raw.candles ORDER BY exchange, symbol, timeframe, ts")
    t0 = time.perf_counter()
    for _, part in raw.group_by(["exchange", "symbol", "timeframe"], maintain_order=True):
        clean = clean_candles(part, start=int(part["ts"].min()), end=int(part["ts"].max()) + HOUR_MS).candles
        for candles in (clean, resample(clean, "4h"), resample(clean, "1d")):
            compute_indicators(candles, specs=specs)
    return time.perf_counter() - t0


def _engine_backtest_floor(wh, config) -> tuple[float, int]:
    """Seconds for the engine alone: every stored (parameter set, market) backtest run again."""
    from quantdag.backtest import run
    from quantdag.stages.common import read_candles
    from quantdag.stages.signals import read_signals, resolve_param_set

    settings = config.backtest_settings()
    keys = wh.query("SELECT param_set FROM signals.param_sets ORDER BY param_set")["param_set"].to_list()
    jobs = []
    for m in config.research_markets:
        market = m.on("sim")
        candles = read_candles(wh, market)
        for k in keys:
            s = resolve_param_set(wh, k)
            sig = read_signals(wh, s, market)
            jobs.append((candles, sig, settings.replace(timeframe=market.timeframe)))
    run(*jobs[0][:1], jobs[0][1]["entry"], jobs[0][1]["exit"], settings=jobs[0][2])  # compiled before timing
    t0 = time.perf_counter()
    for candles, sig, s in jobs:
        if sig["target"].null_count() < sig.height:
            run(candles, target=sig["target"].fill_null(0.0), settings=s)
        else:
            run(candles, sig["entry"], sig["exit"], settings=s)
    return time.perf_counter() - t0, len(jobs)


def pipeline(days: int, n_param_sets: int) -> dict[str, object]:
    import dagster as dg

    from pipelines.definitions import build_defs, prepare
    from pipelines.instance import write_instance_yaml
    from pipelines.demo import last_days, run_backtests, run_job
    from quantdag.sim import MarketModel, SimExchange
    from resources.exchange import SIM_GENESIS_MS

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="qd_bench_") as tmp, \
            SimExchange(MarketModel(seed=7, markets=_sim_markets(), genesis_ms=SIM_GENESIS_MS)) as sim:  # fmt: skip
        data_dir = Path(tmp)
        home = data_dir / "dagster_home"
        home.mkdir()
        os.environ["DAGSTER_HOME"] = str(home)
        config = _config(days, n_param_sets, data_dir)
        write_instance_yaml(home, config)
        defs = build_defs(data_dir, config=config, sim_url=sim.url)
        keys = list(prepare(config))
        wh = defs.resources["warehouse"].get()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            seconds = run_job(defs, "daily_data_job", last_days(days), instance, only_missing=False)
            n = wh.query("SELECT count(*) AS n FROM market.candles")["n"][0]
            out.update({
                "data_days": days, "data_markets": len({m.symbol for m in config.markets}), "data_series": len(config.markets),
                "data_candles": int(n), "data_indicator_rows": int(wh.query("SELECT count(*) AS n FROM features.indicators")["n"][0]),
                "data_s": round(seconds, 2), "data_engine_floor_s": round(_engine_data_floor(wh, config), 2),
                "data_target_s": 60,
            })  # fmt: skip
            blocked: dict[str, str] = {}
            seconds = run_backtests(defs, instance, keys, data_changed=True, blocked=blocked)
            runs = int(wh.query("SELECT count(*) AS n FROM backtest.runs WHERE mlflow_run_id IS NOT NULL")["n"][0])
            floor, n_floor = _engine_backtest_floor(wh, config)
            out.update({
                "backtest_param_sets": len(keys), "backtest_markets": len(config.research_markets),
                "backtest_runs_stored_with_mlflow_id": runs, "backtest_blocked": len(blocked),
                "backtest_s": round(seconds, 2), "backtest_ms_per_backtest": round(1000 * seconds / max(runs, 1), 1),
                "backtest_engine_floor_s": round(floor, 4), "backtest_engine_runs": n_floor,
                "backtest_target_s": 60,
            })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--param-sets", type=int, default=100)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    out: dict[str, object] = {"benchmark": "pipeline"}
    out.update(pipeline(args.days, args.param_sets))
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "normalize.py")], capture_output=True, text=True, check=True
    )
    out.update({f"normalize_{k}": v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()})
    out["normalize_target_candles_per_s"] = 5_000_000
    print(json.dumps(out))


if __name__ == "__main__":
    main()

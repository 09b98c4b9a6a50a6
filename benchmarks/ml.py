"""Speed of the ML framework: features, labels, purged walk-forward LightGBM, the out-of-sample backtest.

Prints one JSON line on stdout::

    .venv/bin/python benchmarks/ml.py                      # 10 markets x 2 years of 1h candles, ~100 features
    .venv/bin/python benchmarks/ml.py --markets 3 --days 180 --trees 50   # quicker

The candles are a seeded random walk with GARCH-like volatility clustering (no predictable drift:
the out-of-sample figures reported alongside should show no skill). ``features_per_s`` is candle
x feature values per second of :func:`quantdag.ml.features.compute_features` over every market at
once (one thread; the numba kernels are compiled by a warm-up call first). The walk-forward is
``n_splits`` purged blocks plus the final fit on every row, LightGBM with one thread
(``deterministic``), so ``walk_forward_s`` is a one-core figure on this 2-core machine
(``walk_forward_cpu_s``: its CPU time, the figure to compare when other work loads the machine).
``--outliers none`` times the walk-forward without the outlier rule (default: ``di``, as configured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import polars as pl

from quantdag.ml.features import FeatureConfig, compute_features
from quantdag.ml.labels import LabelConfig, compute_labels
from quantdag.ml.outliers import OUTLIER_METHODS, OutlierConfig
from quantdag.ml.training import TrainingConfig, oos_backtest, train

HOUR = 3_600_000
START = 1_640_995_200_000  # 2022-01-01 UTC


def random_walk_candles(n_markets: int, days: int, seed: int = 0) -> pl.DataFrame:
    """CANDLES rows: ``n_markets`` correlated random walks (a common factor), 1h, volatility clustering."""
    rng = np.random.default_rng(seed)
    n = days * 24
    factor = rng.standard_t(5, n) * 0.004
    vol = np.exp(np.convolve(rng.normal(0, 0.25, n), np.ones(48) / 48, mode="same"))
    parts = []
    for k in range(n_markets):
        r = (0.7 * factor + rng.standard_t(5, n) * 0.005) * vol
        close = 100.0 * (k + 1) * np.exp(np.cumsum(r))
        open_ = np.concatenate([[close[0]], close[:-1]])
        wick = np.abs(rng.normal(0, 0.003, (2, n))) * vol
        parts.append(pl.DataFrame({
            "exchange": "bench", "symbol": "BTC/USDT" if k == 0 else f"C{k}/USDT", "timeframe": "1h",
            "ts": pl.Series(START + HOUR * np.arange(n, dtype=np.int64)).cast(pl.Datetime("ms", "UTC")),
            "open": open_, "high": np.maximum(open_, close) * np.exp(wick[0]), "low": np.minimum(open_, close) * np.exp(-wick[1]),
            "close": close, "volume": rng.gamma(2.0, 50.0, n) * vol, "filled": False,
        }))  # fmt: skip
    return pl.concat(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--markets", type=int, default=10)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--splits", type=int, default=4)
    ap.add_argument("--outliers", choices=OUTLIER_METHODS, default="di", help="the outlier rule (ml.outliers.method)")
    args = ap.parse_args()

    features = FeatureConfig(periods=(3, 6, 12, 24, 48, 96, 168), timeframes=("4h", "1d"),
                             groups=("returns", "volatility", "indicators", "timeframes", "regime", "events", "calendar", "markets"),
                             correlated=("BTC/USDT",))  # fmt: skip
    cfg = TrainingConfig(features=features, labels=LabelConfig(kind="triple_barrier", horizon=24), params={"n_estimators": args.trees},
                         n_splits=args.splits, outliers=OutlierConfig(method=args.outliers))  # fmt: skip
    candles = random_walk_candles(args.markets, args.days)
    compute_features(candles.head(2000), features)  # compile the kernels

    t = time.perf_counter()
    feats = compute_features(candles, features)
    t_features = time.perf_counter() - t
    n_features = feats.width - 4
    t = time.perf_counter()
    labels = compute_labels(candles, cfg.labels)
    t_labels = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    result = train(feats, labels, cfg)
    t_train, cpu_train = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    bt = oos_backtest(candles, result.oos, cfg)
    t_backtest = time.perf_counter() - t
    print(json.dumps({
        "benchmark": "ml", "markets": args.markets, "days": args.days, "candles": candles.height, "features": n_features,
        "features_s": round(t_features, 3), "features_per_s": round(candles.height * n_features / t_features),
        "labels_s": round(t_labels, 3), "rows": int(result.metrics["rows"]), "oos_rows": int(result.metrics["oos_rows"]),
        "trees": args.trees, "splits": args.splits, "outliers": args.outliers,
        "outliers_train_frac": round(result.metrics.get("outliers_train_frac", 0.0), 5),
        "outliers_oos_frac": round(result.metrics.get("outliers_oos_frac", 0.0), 5),
        "walk_forward_s": round(t_train, 2), "walk_forward_cpu_s": round(cpu_train, 2), "oos_backtest_s": round(t_backtest, 2),
        "total_s": round(t_features + t_labels + t_train + t_backtest, 2),
        "cv_auc": round(result.metrics["cv_auc"], 4), "oos_sharpe": round(bt.sharpe, 5), "oos_dsr": round(bt.dsr, 4),
        "oos_pbo": round(bt.pbo, 4), "cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

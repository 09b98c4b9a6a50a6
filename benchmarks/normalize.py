"""Throughput of ``clean_candles`` on a realistic raw frame; prints ONE JSON line.

The frame imitates what the ingestion writes to ``raw.candles`` for three 1m markets: pages of
1000 candles (ccxt's usual limit) fetched just after their last candle closed, in shuffled page
order; ~1% duplicate rows (re-fetched pages and candles first caught still open, then fetched
again closed with their final values); a few runs of missing candles; the still-open last candle
of each market. Timing is the best of ``--runs`` after one warm-up call (numba JIT/cache load),
so it measures steady-state cleaning, not compilation.

Usage: ``.venv/bin/python benchmarks/normalize.py [--candles 1000000] [--runs 7]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quantdag.data.clean import clean_candles

MINUTE = 60_000
PAGE = 1000
T0 = 1_672_531_200_000  # 2023-01-01 UTC


def _market(rng: np.random.Generator, symbol: str, n_candles: int, price: float) -> tuple[pl.DataFrame, int]:
    """Rows of one market as fetched (page by page); returns the frame and its page count."""
    ts = T0 + np.arange(n_candles + 200, dtype=np.int64) * MINUTE
    keep = np.ones(ts.size, dtype=bool)
    for at in rng.integers(100, ts.size - 100, 4):  # a few gaps of 1..30 candles
        keep[at : at + rng.integers(1, 31)] = False
    ts = ts[keep][:n_candles]
    close = price * np.exp(np.cumsum(rng.normal(0.0, 8e-4, ts.size)))
    open_ = np.r_[price, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.exponential(3e-4, ts.size))
    low = np.minimum(open_, close) * (1 - rng.exponential(3e-4, ts.size))
    volume = rng.exponential(4.0, ts.size)
    page = np.arange(ts.size) // PAGE
    last_ts = ts[np.minimum((page + 1) * PAGE - 1, ts.size - 1)]
    fetched = last_ts + MINUTE + rng.integers(50, 3000, ts.size)
    base = pl.DataFrame(
        {"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume,
         "fetched": fetched, "page": page}
    )
    n_pages = int(page[-1]) + 1
    # ~1%: pages fetched a second time later (a retry after a timeout), same values
    again = rng.choice(n_pages, size=max(1, n_pages // 100), replace=False)
    refetched = base.filter(pl.col("page").is_in(again)).with_columns(
        pl.col("fetched") + 3_600_000, pl.col("page") + n_pages
    )
    # 1 page in 20 ends with 5 candles caught still open (partial values); a later page has them closed
    caught = rng.choice(n_pages - 1, size=max(1, n_pages // 20), replace=False)
    partial = (pl.col("open") + pl.col("close")) / 2
    still_open = (
        base.filter(pl.col("page").is_in(caught) & (pl.int_range(pl.len()) % PAGE >= PAGE - 5))
        .with_columns(
            close=partial,
            high=pl.max_horizontal("open", partial),
            low=pl.min_horizontal("open", partial),
            volume=pl.col("volume") * 0.3,
            fetched=pl.col("ts") + 20_000,
            page=pl.col("page") + 2 * n_pages,
        )
    )
    # the last candle of the market is still open at the last fetch
    last = base.tail(1).with_columns((pl.col("ts") + 30_000).alias("fetched"), pl.col("page") + 3 * n_pages)
    rows = pl.concat([base, refetched, still_open, last]).with_columns(
        exchange=pl.lit("binance"), symbol=pl.lit(symbol), timeframe=pl.lit("1m")
    )
    return rows, 4 * n_pages


def make_raw(n_rows: int, seed: int = 20230310) -> pl.DataFrame:
    """RAW frame of exactly ``n_rows`` rows over three 1m markets, pages in shuffled order.

    The markets are generated slightly longer than needed and the shuffled frame is cut to
    ``n_rows``, which drops the tail of one page: one more gap, as a lost page would make.
    """
    rng = np.random.default_rng(seed)
    parts, offset = [], 0
    for symbol, price in (("BTC/USDT", 20_000.0), ("ETH/USDT", 1_500.0), ("SOL/USDT", 20.0)):
        rows, n_pages = _market(rng, symbol, int(n_rows / 3 / 1.009) + 400, price)
        parts.append(rows.with_columns(pl.col("page") + offset))
        offset += n_pages
    raw = pl.concat(parts)
    pages = raw["page"].unique().to_numpy()
    rank = pl.DataFrame({"page": pages, "rank": rng.permutation(pages.size)})
    raw = raw.join(rank, on="page").sort("rank", maintain_order=True).head(n_rows)
    return raw.select(
        "exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume",
        pl.col("fetched").cast(pl.Datetime("ms", "UTC")).alias("fetched_at"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write-raw", type=Path, help=argparse.SUPPRESS)  # child mode: generate only
    args = parser.parse_args()
    if args.write_raw:
        make_raw(args.candles).write_parquet(args.write_raw)
        return
    # Generate in a child process so that peak RSS is the cleaner's (raw frame + cleaning), not
    # the generator's joins and shuffles.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.parquet"
        subprocess.run([sys.executable, __file__, "--candles", str(args.candles), "--write-raw", str(path)], check=True)
        raw = pl.read_parquet(path)
    start, end = T0, T0 + 400 * 86_400_000
    clean_candles(raw, start=start, end=end)  # warm-up: numba cache load, polars thread pool
    best = float("inf")
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = clean_candles(raw, start=start, end=end)
        best = min(best, time.perf_counter() - t0)
        counts = result.counts
        del result  # one result alive at a time, as in the pipeline
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({
        "candles": raw.height,
        "seconds": round(best, 4),
        "candles_per_s": round(raw.height / best),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "duplicates": counts.duplicates,
        "unclosed": counts.unclosed,
        "gaps": counts.gaps,
        "filled_candles": counts.filled_candles,
    }))


if __name__ == "__main__":
    main()

"""Throughput of ``quantdag.sentiment.score`` on one core; prints ONE JSON line.

The headlines are the simulator's feed (news and social posts, crypto slang included) over
``--days`` days, each made unique by a trailing number so no layer could cache its way to a
figure. The issue names no peer; raw VADER (its own lexicon, no phrase rewriting, same
texts) is reported beside ours as the reference: the overlay and phrase pass cost what they cost
above it. Best of ``--runs`` after one warm-up call (lexicon load).

Usage: ``.venv/bin/python benchmarks/sentiment.py [--headlines 20000] [--runs 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quantdag.sentiment import Scorer, score  # noqa: E402
from quantdag.sentiment.dedup import first_copies  # noqa: E402
from quantdag.sim import MarketModel  # noqa: E402
from quantdag.sim.news import NewsFeed  # noqa: E402

GENESIS_MS = 1_735_689_600_000
DAY = 86_400_000


def headlines(n: int) -> list[str]:
    model = MarketModel(seed=7, genesis_ms=GENESIS_MS, history_days=120)
    now = model.now_ms()
    titles = [v["title"] for v in NewsFeed(model).versions(now - 120 * DAY, now)]
    return [f"{titles[i % len(titles)]} {i}" for i in range(n)]


def best_rate(fn, texts: list[str], runs: int) -> float:
    fn(texts[:10])
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--headlines", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the issue asks
    texts = headlines(args.headlines)
    ours = best_rate(score, texts, args.runs)
    raw = Scorer({}, phrases=False)
    vader = best_rate(raw.score, texts, args.runs)
    dedup = best_rate(first_copies, texts[:5000], 1)
    print(json.dumps({
        "benchmark": "sentiment.score", "headlines": len(texts), "runs": args.runs, "cores": 1,
        "ours_headlines_per_s": round(ours), "raw_vader_headlines_per_s": round(vader),
        "overlay_cost_pct": round(100 * (vader / ours - 1), 1), "target_headlines_per_s": 2000,
        "meets_target": ours >= 2000, "dedup_headlines_per_s": round(dedup),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

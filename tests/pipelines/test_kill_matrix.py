"""kill -9 at seeded random points of the data job: the next start completes without help and its
tables equal a clean run's (same seeded simulator, so the data is identical).

Each kill point: a fresh data dir, a worker (``kill_matrix_job.py``, what `make demo` does for
market data) is SIGKILLed a seeded delay after it is told to go; the next worker on the same dir
recovers the orphaned run (``recover_orphaned_runs``) and backfills the days still missing. Delays
are drawn over the clean run's span, and the step the kill landed in is read from the event log.
Each run is a process forked from one worker that imported everything once (the imports cost more than a run).
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from pipeline_helpers import recent_days
from quantdag.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("kill_matrix_job.py")
SEED = 20261202
N_KILLS = 10
KEY = ("exchange", "symbol", "timeframe", "ts")
TABLE_KEYS = {
    "market.candles": KEY,
    "market.gaps": ("exchange", "symbol", "timeframe", "gap_start"),
    "features.indicators": KEY,
}
#: raw.candles without fetched_at (it differs between runs): one row per candle, content on key + OHLCV
RAW = ("SELECT count(*) AS n, count(DISTINCT (exchange, symbol, timeframe, ts)) AS keys, "
       "coalesce(bit_xor(hash(exchange, symbol, timeframe, ts, open, high, low, close, volume)), 0) AS h FROM raw.candles")


class Worker:
    """``kill_matrix_job.py``: imports once, then runs each request in a forked process (and group) of its own."""

    def __init__(self, sim_url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), sim_url], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     bufsize=1, start_new_session=True)  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._until("ready", timeout=300)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # the end

    def _until(self, prefix: str, timeout: float) -> list[str]:
        """The worker's lines up to the first starting with ``prefix`` (the log lines before it included)."""
        seen, deadline = [], time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.time()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} from the worker in {timeout} s: " + "".join(seen)[-3000:]) from None
            assert line, f"the worker ended before {prefix!r}: " + "".join(seen)[-3000:]
            seen.append(line)
            if line.startswith(prefix):
                return seen

    def go(self, data_dir: Path, days: list[str]) -> tuple[int, float]:
        """The pid (and process group) of a new run process on ``data_dir``, and when it started."""
        self.proc.stdin.write(f"{data_dir} {','.join(days)}\n")
        self.proc.stdin.flush()
        pid = int(self._until("started ", timeout=60)[-1].split()[1])
        return pid, time.time()

    def finish(self, timeout: float = 120.0) -> str:
        """The output of the run started last, once it has ended successfully."""
        out = "".join(self._until("exit ", timeout))
        assert out.rstrip().endswith("exit 0") and "done" in out, out[-3000:]
        return out

    def kill(self, pid: int) -> None:
        """SIGKILL the run's process group (the run and any step process it started), as a crash would."""
        with contextlib.suppress(ProcessLookupError):  # the run already ended
            os.killpg(pid, signal.SIGKILL)
        self._until("exit ", timeout=30)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def _tables(data_dir: Path) -> dict[str, object]:
    wh = Warehouse(data_dir / "quantdag.duckdb", read_only=True)
    out: dict[str, object] = {t: wh.table_hash(t, k) for t, k in TABLE_KEYS.items()}
    out["raw.candles"] = wh.query(RAW).row(0)
    return out


def _steps(data_dir: Path) -> list[tuple[float, str, str | None]]:
    """(timestamp, event type, step) of the run, step start/success events of every run."""
    kinds = {"PIPELINE_START", "STEP_START", "STEP_SUCCESS", "PIPELINE_SUCCESS"}  # PIPELINE_*: Dagster's run events
    with dg.DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        return sorted(
            (e.timestamp, e.dagster_event.event_type_value, e.step_key)
            for run in instance.get_runs()
            for e in instance.all_logs(run.run_id)
            if e.dagster_event is not None and e.dagster_event.event_type_value in kinds
        )


def _phase(events: list[tuple[float, str, str | None]]) -> str:
    """Where the killed run was: the step started and not finished, or between steps."""
    if not any(kind == "PIPELINE_START" for _, kind, _ in events):
        return "before the run started"
    started = [s for _, kind, s in events if kind == "STEP_START"]
    done = {s for _, kind, s in events if kind == "STEP_SUCCESS"}
    running = [s for s in started if s not in done]
    if running:
        return f"in step {running[-1]}"
    if any(kind == "PIPELINE_SUCCESS" for _, kind, _ in events):
        return "run already finished"
    return f"after step {started[-1]}" if started else "run started, no step yet"


@pytest.mark.slow
def test_kill_9_at_random_points_then_the_next_run_completes_with_a_clean_runs_tables(tmp_path, sim):
    days = recent_days(2)
    clean = tmp_path / "clean"
    kill_dirs = [tmp_path / f"kill{i}" for i in range(N_KILLS)]
    worker = Worker(sim.url)
    try:
        _, t0 = worker.go(clean, days)
        worker.finish()
        duration = time.time() - t0
        reference = _tables(clean)
        events = _steps(clean)
        marks = {f"{kind} {step or ''}".strip(): round(ts - t0, 2) for ts, kind, step in events}
        assert reference["market.candles"].split(":")[0] != "0"
        print(f"\nclean run: {duration:.1f} s after go; {marks}")

        # over the steps (ingestion, normalization, indicators), from just before the first to the last's end
        steps = [ts - t0 for ts, kind, _ in events if kind in ("STEP_START", "STEP_SUCCESS")]
        rng = random.Random(SEED)
        delays = sorted(rng.uniform(max(0.1, steps[0] - 0.5), steps[-1]) for _ in range(N_KILLS))
        phases: Counter[str] = Counter()
        mismatches = []
        for i, (delay, data_dir) in enumerate(zip(delays, kill_dirs)):
            victim, t0 = worker.go(data_dir, days)
            time.sleep(max(0.0, t0 + delay - time.time()))
            worker.kill(victim)
            phase = _phase(_steps(data_dir))
            phases[phase] += 1
            _, t1 = worker.go(data_dir, days)
            out = worker.finish()
            got = _tables(data_dir)
            print(f"kill {i}: {delay:.2f} s, {phase}; next run {time.time() - t1:.1f} s, "
                  f"{out.count('recovered')} run(s) recovered; tables equal: {got == reference}")
            if got != reference:
                mismatches.append((i, delay, phase, {t: (got[t], reference[t]) for t in got if got[t] != reference[t]}))
        print(f"kill points by phase: {dict(phases)}")
        assert not mismatches, mismatches
        assert sum(n for phase, n in phases.items() if phase.startswith("in step")) >= N_KILLS // 3, phases  # kills hit the steps
    finally:
        worker.close()

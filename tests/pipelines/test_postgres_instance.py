"""The Dagster instance on PostgreSQL (dagster-postgres) gives the tables of the SQLite one.

A real PostgreSQL server (``scripts/postgres.sh``, the ``postgres`` fixture) backs the instance;
runs go through the multiprocess executor (every step in its own process, ``pg_job.py``) with
two runs in flight at once, their DuckDB writers serialised by the pool ``duckdb`` (limit 1,
kept in PostgreSQL). The reference is one process on a SQLite instance, in process, over the
same days, markets and parameter sets of the same seeded simulator. A run killed mid-way (its
process group SIGKILLed) is failed by ``recover_orphaned_runs`` and re-executed from its failure.
The workers warm up (imports, fork server) while the reference runs.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline_helpers import recent_days
from pipelines.instance import instance_settings, render, setup_home, template, write_instance_yaml
from pipelines.recovery import recover_orphaned_runs
from quantdag.config import DEFAULT_CONFIG_PATH, PG_PASSWORD_ENV, parse_config
from quantdag.errors import ConfigurationError
from quantdag.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("pg_job.py")
#: Two runs' worth of days: the last two, and two days 90 days earlier, further back than any indicator's
#: look-back (21 days of 1h candles, 84 of 4h), so the runs share no input whichever writes first; the
#: hole between them is recorded the same way in any order (market.gaps).
RECENT = recent_days(2)
EARLY = [(date.fromisoformat(RECENT[0]) - timedelta(days=d)).isoformat() for d in (91, 90)]
UNIVERSE = {
    "start_date": "100d",
    "markets": [{"symbol": "ETH/USDT", "timeframes": ["1h"]}, {"symbol": "BTC/USDT", "timeframes": ["1h"], "resampled": ["4h"]}],
    "research_markets": ["BTC/USDT:1h"],
    "accept_holes": True,  # backtests run over both ranges as if continuous
}
STRATEGIES = {"defaults": False, "paper": [],
              "param_sets": [{"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}, {"strategy": "rsi", "params": {}}]}
CANDLE = ("exchange", "symbol", "timeframe", "ts")
RESULT = ("strategy", "params_hash", "exchange", "symbol", "timeframe")
DATA_TABLES = {"market.candles": CANDLE, "market.gaps": ("exchange", "symbol", "timeframe", "gap_start"),
               "features.indicators": CANDLE}
BACKTEST_TABLES = {"signals.signals": (*RESULT, "ts"), "backtest.trades": (*RESULT, "trade_id"),
                   "backtest.equity": (*RESULT, "ts")}


def _config_data(sim_url: str, instance: dict | None = None) -> dict:
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data.update(universe=UNIVERSE, strategies=STRATEGIES)
    data["exchange"]["simulator"] = {"url": sim_url, "seed": 7}
    if instance is not None:
        data["instance"] = instance
    return data


def _hash(wh: Warehouse, table: str, key: tuple[str, ...], since: str | None, exclude: tuple[str, ...] = ()) -> str:
    """Rows and a content hash of ``table`` in ``key`` order (only rows from day ``since`` on, if given)."""
    where = f"WHERE {'gap_start' if 'gap_start' in key else 'ts'} >= TIMESTAMPTZ '{since} 00:00:00+00'" if since else ""
    columns = f"* EXCLUDE ({', '.join(exclude)})" if exclude else "*"
    n, h = wh.query(f"SELECT count(*) AS n, coalesce(bit_xor(hash(t)), 0) AS h FROM (SELECT {columns}, row_number() "
                    f"OVER (ORDER BY {', '.join(key)}) AS rn FROM {table} {where}) t").row(0)
    return f"{n}:{h:x}"


def _tables(data_dir: Path, tables: dict[str, tuple[str, ...]], since: str | None = None) -> dict[str, str]:
    wh = Warehouse(data_dir / "quantdag.duckdb", read_only=True)
    out = {t: _hash(wh, t, k, since) for t, k in tables.items()}
    if "backtest.trades" in tables:  # without what names the runs (Dagster and MLflow run ids)
        out["backtest.runs"] = _hash(wh, "backtest.runs", RESULT, None, exclude=("mlflow_run_id", "dagster_run_id"))
    return out


def _range(site: Site, days: list[str]) -> dict[str, str]:
    """Tags of one run of the data job over ``days`` × every market (whatever its partitions)."""
    from pipelines.definitions import build_defs
    from pipelines.demo import range_tags

    return range_tags(build_defs(site.data_dir, config=site.config).resolve_job_def("daily_data_job").partitions_def, days)


class Worker:
    """A warm run worker (``pg_job.py``) in a session of its own, so a kill takes its step processes too."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], cwd=ROOT, env=env, text=True, bufsize=1,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.warm = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # the end

    def _until(self, prefix: str, timeout: float) -> str:
        deadline = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.time()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} from the worker in {timeout} s: " + "".join(self.seen)[-3000:]) from None
            self.seen.append(line)
            if line.startswith(prefix):
                return line.strip()
            if not line:
                raise AssertionError(f"the worker ended before {prefix!r}: " + "".join(self.seen)[-3000:])

    def ready(self) -> Worker:
        """Once the worker is warm (imports done, fork server up)."""
        if not self.warm:
            self.warm = bool(self._until("ready", 180))
        return self

    def go(self, request: dict) -> None:
        """Start a run (once the worker is warm)."""
        self.ready()
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def done(self, timeout: float = 180) -> str:
        """The id of the run started last, once it succeeded."""
        _, run_id, success = self._until("done ", timeout).split()
        assert success == "True", "".join(self.seen)[-4000:]
        return run_id

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()


class Site:
    """A data dir, a configuration file and a Dagster home on a new database of the server, with warm workers."""

    def __init__(self, root: Path, postgres, sim_url: str, db: str, workers: int) -> None:
        root.mkdir(parents=True)
        self.data_dir, self.home = root / "data", root / "home"
        self.config_file = root / "quantdag.yaml"
        self.config_file.write_text(yaml.safe_dump(_config_data(sim_url, postgres.instance_section(postgres.create_database(db)))))
        self.config = parse_config(yaml.safe_load(self.config_file.read_text()), source=self.config_file)
        setup_home(self.home, self.config)  # what `python -m pipelines.instance` does: the file, the tables, the pool
        env = {**os.environ, "DAGSTER_HOME": str(self.home), "QUANTDAG_CONFIG": str(self.config_file),
               "QUANTDAG_DATA_DIR": str(self.data_dir), PG_PASSWORD_ENV: postgres.password, "PYTHONPATH": str(ROOT)}
        self.workers = [Worker(env) for _ in range(workers)]

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def close(self) -> None:
        for w in self.workers:
            w.close()


def _overlap(instance: dg.DagsterInstance, run_ids: list[str]) -> float:
    """Seconds during which every run of ``run_ids`` was in flight together."""
    records = [instance.get_run_record_by_id(r) for r in run_ids]
    return min(r.end_time for r in records) - max(r.start_time for r in records)


def _steps(instance: dg.DagsterInstance, run_ids: list[str]) -> list[tuple[float, float, str, int]]:
    """(start, end, step, pid) of every step of the runs that succeeded, in start order."""
    out = []
    for run_id in run_ids:
        starts: dict[str, tuple[float, int]] = {}
        for e in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}):
            if e.dagster_event.event_type == dg.DagsterEventType.STEP_START:
                starts[e.step_key] = (e.timestamp, e.dagster_event.pid)
            else:
                out.append((starts[e.step_key][0], e.timestamp, e.step_key, starts[e.step_key][1]))
    return sorted(out)


@pytest.fixture(scope="module")
def sites(tmp_path_factory, postgres, sim) -> Iterator[dict[str, Site]]:
    """The PostgreSQL sites of the slow tests, their workers warming while the reference runs."""
    root = tmp_path_factory.mktemp("pg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PG_PASSWORD_ENV, postgres.password)  # this process's instances read it too
        made: dict[str, Site] = {}
        try:
            made["concurrent"] = Site(root / "concurrent", postgres, sim.url, "concurrent_runs", workers=2)
            made["killed"] = Site(root / "killed", postgres, sim.url, "killed_run", workers=2)
            yield made
        finally:
            for site in made.values():
                site.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sim) -> dict[str, object]:
    """The tables of one process on a SQLite instance: the data job over every market, then the backtests."""
    from pipelines.definitions import build_defs, prepare
    from pipelines.demo import run_backtests, run_job

    root = tmp_path_factory.mktemp("sqlite")
    config = parse_config(_config_data(sim.url), source=DEFAULT_CONFIG_PATH)
    assert config.instance.storage == "sqlite"
    write_instance_yaml(root / "home", config)
    defs = build_defs(root, config=config, sim_url=sim.url)
    # the SQLite event log finds its folder through $DAGSTER_HOME (pipelines/event_log.py)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(root / "home"))
        instance = dg.DagsterInstance.from_config(str(root / "home"))
        assert type(instance.event_log_storage).__name__ == "FastSqliteEventLogStorage"
        for days in (EARLY, RECENT):
            run_job(defs, "daily_data_job", days, instance, only_missing=False)
        blocked: dict[str, str] = {}
        run_backtests(defs, instance, list(prepare(config)), data_changed=True, blocked=blocked)
        assert blocked == {}
        instance.dispose()
    return {**_tables(root, {**DATA_TABLES, **BACKTEST_TABLES}), "recent": _tables(root, DATA_TABLES, since=RECENT[0])}


@pytest.mark.slow
def test_multiprocess_concurrent_runs_on_postgres_give_the_sqlite_tables(sites, reference):
    from assets.partitions import param_sets
    from pipelines.definitions import prepare

    site = sites["concurrent"]
    keys = list(prepare(site.config))
    assert len(keys) == len(site.workers) == 2
    with site.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions(param_sets.name, keys)
        for w in site.workers:  # both warm, so both runs start together
            w.ready()
        for worker, days in zip(site.workers, (EARLY, RECENT)):  # two runs at once
            worker.go({"job": "daily_data_job", "tags": _range(site, days)})
        data_runs = [w.done() for w in site.workers]
        assert _tables(site.data_dir, DATA_TABLES) == {t: reference[t] for t in DATA_TABLES}

        for worker, key in zip(site.workers, keys):  # two runs at once, one parameter set each
            worker.go({"job": "backtest_job", "tags": {"dagster/partition": key}})
        backtest_runs = [w.done() for w in site.workers]
        assert _tables(site.data_dir, {**DATA_TABLES, **BACKTEST_TABLES}) == {t: reference[t] for t in (*DATA_TABLES, *BACKTEST_TABLES, "backtest.runs")}

        for runs in (data_runs, backtest_runs):
            assert _overlap(instance, runs) > 0, "the two runs were never in flight together"
            steps = _steps(instance, runs)
            workers = {instance.all_logs(r, of_type=dg.DagsterEventType.RUN_START)[0].dagster_event.pid for r in runs}
            assert not {pid for *_, pid in steps} & workers, "a step ran in its run's process, not in its own"
            # every step writes DuckDB (pool duckdb, limit 1, its slots in PostgreSQL): none overlapped
            assert all(a[1] <= b[0] for a, b in zip(steps, steps[1:])), steps
    assert reference["backtest.runs"].split(":")[0] == str(len(keys) * len(UNIVERSE["research_markets"]))
    assert not reference["backtest.trades"].startswith("0:")


@pytest.mark.slow
def test_run_killed_mid_way_on_postgres_resumes_to_the_same_tables(sites, reference):
    site = sites["killed"]
    victim, heir = site.workers
    with site.instance() as instance:
        victim.go({"job": "daily_data_job", "tags": _range(site, RECENT)})
        deadline, run_id = time.time() + 120, None
        while run_id is None:  # killed once `candles` started (raw_candles is done)
            assert time.time() < deadline and victim.proc.poll() is None, "".join(victim.seen)[-3000:]
            for run in instance.get_runs():
                if any(e.step_key == "candles" for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)):
                    run_id = run.run_id
            time.sleep(0.05)
        victim.kill()  # the run's process and its step processes, as a crash would

        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
        assert {s.run_id for s in instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots} == {run_id}
        assert [r.run_id for r in recover_orphaned_runs(instance)] == [run_id]
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots

        heir.go({"job": "daily_data_job", "resume": run_id})
        resumed = heir.done()
        assert instance.get_run_by_id(resumed).parent_run_id == run_id
        steps = {step for _, _, step, _ in _steps(instance, [resumed])}
        assert {"candles", "indicators"} <= steps and "raw_candles" not in steps  # raw_candles kept
        assert steps <= {"candles", "indicators", "raw_news", "sentiment_items", "sentiment_bars", "market_events", "ml_features"}  # unfinished
    assert _tables(site.data_dir, DATA_TABLES, since=RECENT[0]) == reference["recent"]


# ---- configuration -> dagster.yaml ------------------------------------------------------------------


def _config(**instance):
    return parse_config({**yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()), "instance": instance}, source=DEFAULT_CONFIG_PATH)


def test_postgres_storage_gives_the_postgres_instance_with_the_password_by_env_reference_only(monkeypatch):
    monkeypatch.setenv(PG_PASSWORD_ENV, "s3cret-never-written")
    config = _config(storage="postgres", postgres={"host": "db.internal", "port": 6543, "db": "dg", "user": "quant"})
    text = render(config)
    settings = yaml.safe_load(text)
    db = {"hostname": "db.internal", "port": 6543, "db_name": "dg", "username": "quant", "password": {"env": PG_PASSWORD_ENV},
          "scheme": "postgresql+psycopg2"}
    assert {k: (v["module"], v["class"], v["config"]) for k, v in settings.items() if k.endswith("_storage")} == {
        "run_storage": ("dagster_postgres.run_storage", "PostgresRunStorage", {"postgres_db": db}),
        "event_log_storage": ("pipelines.instance", "PoolSafePostgresEventLogStorage", {"postgres_db": db}),
        "schedule_storage": ("dagster_postgres.schedule_storage", "PostgresScheduleStorage", {"postgres_db": db}),
    }
    assert "s3cret" not in text and "&id" not in text  # no secret, no YAML anchors
    shared = template()
    for key in ("concurrency", "run_monitoring", "telemetry"):
        assert settings[key] == shared[key]
    assert settings["concurrency"]["pools"]["default_limit"] == 1


def test_sqlite_storage_is_the_template_and_unchanged_files_are_not_rewritten(tmp_path):
    config = _config()
    assert config.instance.storage == "sqlite" and config.instance.postgres.port == 5432
    assert instance_settings(config) == template()
    assert render(config).endswith((ROOT / "pipelines" / "dagster.yaml").read_text())
    written = instance_settings(config, tmp_path)  # a home's file: the template plus its event log's folder
    assert written["event_log_storage"]["config"] == {"base_dir": str((tmp_path / "history" / "runs").resolve())}
    assert yaml.safe_load(render(config, tmp_path)) == written
    path = write_instance_yaml(tmp_path, config)
    os.utime(path, (1, 1))
    write_instance_yaml(tmp_path, config)
    assert path.stat().st_mtime == 1  # same content: left alone (make's `-nt` stays meaningful)
    write_instance_yaml(tmp_path, _config(storage="postgres"))
    assert "postgres_db" in path.read_text()


def test_cli_writes_the_home_of_dagster_home(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "pipelines.instance"], cwd=ROOT, env=env, check=True, timeout=60)
    assert yaml.safe_load((tmp_path / "home" / "dagster.yaml").read_text()) == instance_settings(_config(), tmp_path / "home")


@pytest.mark.parametrize(("instance", "expected"), [
    ({"storage": "mysql"}, "instance.storage: Input should be 'sqlite' or 'postgres' (got 'mysql')"),
    ({"postgres": {"port": 0}}, "instance.postgres.port: Input should be greater than or equal to 1 (got 0)"),
    ({"postgres": {"hots": "x"}}, "instance.postgres.hots: Extra inputs are not permitted"),
    ({"postgres": {"password": "hunter2"}}, f"instance.postgres: password: never read from the file (set the environment variable {PG_PASSWORD_ENV})"),
])
def test_bad_instance_settings_name_the_key(instance, expected):
    with pytest.raises(ConfigurationError) as err:
        _config(**instance)
    assert expected in str(err.value)
    assert "hunter2" not in str(err.value)


def test_the_postgres_instance_of_the_configuration_connects(tmp_path, postgres, monkeypatch):
    config = _config(**postgres.instance_section())
    write_instance_yaml(tmp_path, config)
    monkeypatch.setenv(PG_PASSWORD_ENV, postgres.password)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.event_log_storage).__name__ == "PoolSafePostgresEventLogStorage"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_runs() == []
    assert postgres.password not in (tmp_path / "dagster.yaml").read_text()


def test_steps_claiming_the_duckdb_pool_at_once_get_one_slot(tmp_path, postgres, monkeypatch):
    """dagster-postgres 0.29.27 alone gave 2 or 3 of 4 simultaneous claims the pool's one slot (5 rounds of 15)."""
    config = _config(**postgres.instance_section(postgres.create_database("claims")))
    monkeypatch.setenv(PG_PASSWORD_ENV, postgres.password)
    setup_home(tmp_path, config)
    instances = [dg.DagsterInstance.from_config(str(tmp_path)) for _ in range(4)]  # one per process, as runs have
    try:
        for round_ in range(8):
            start, claimed = threading.Barrier(len(instances)), []

            def claim(i: int) -> None:
                start.wait()
                claimed.append(instances[i].event_log_storage.claim_concurrency_slot("duckdb", f"r{round_}-{i}", "s").is_claimed)

            threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(instances))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert sorted(claimed) == [False, False, False, True], (round_, claimed)
            for i, instance in enumerate(instances):
                instance.event_log_storage.free_concurrency_slots_for_run(f"r{round_}-{i}")
    finally:
        for instance in instances:
            instance.dispose()

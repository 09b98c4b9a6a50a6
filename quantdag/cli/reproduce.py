"""``quantdag reproduce``: run a logged ``quantdag backtest`` again and compare, bit for bit.

The run's parameters say everything the backtest used (``quantdag.cli.backtest.run_params``): the
strategy as given, its parameters, every setting, the candles' source and exact range, their hash,
and the code version. The candles are read again (downloaded if missing), the strategy and the
engine run again, and the equity curve, the trades and the metrics are compared with the run's
artifacts and metrics: identical to the last bit, or the first difference is shown (exit 1).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import polars as pl

from quantdag.cli.common import CheckFailed, InputError, load_project, reports_errors


def first_frame_difference(logged: pl.DataFrame, fresh: pl.DataFrame) -> str | None:
    """Where two frames first differ (shape, column, row and both values), or None if identical."""
    if logged.columns != fresh.columns:
        return f"columns {logged.columns} were logged, {fresh.columns} now"
    if logged.height != fresh.height:
        return f"{logged.height} rows were logged, {fresh.height} now"
    for c in logged.columns:
        a, b = logged[c], fresh[c]
        if a.dtype != b.dtype:
            return f"column {c!r}: dtype {a.dtype} was logged, {b.dtype} now"
        if a.dtype.is_float():  # bit for bit: compare the float64 bits, so -0.0 vs 0.0 and NaN payloads count
            same = (a.cast(pl.Float64).to_numpy().view("int64") == b.cast(pl.Float64).to_numpy().view("int64")) & (
                a.is_null() == b.is_null()).to_numpy()  # fmt: skip
        else:
            same = a.eq_missing(b).to_numpy()
        if not same.all():
            row = int((~same).argmax())
            ts = f" (ts={logged['ts'][row]})" if "ts" in logged.columns else ""
            return f"column {c!r} row {row}{ts}: {a[row]!r} was logged, {b[row]!r} now"
    return None


def _logged_frame(run_id: str, name: str, tmp: Path) -> pl.DataFrame:
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars on stderr

    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(tmp))
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for a missing artifact
        raise InputError(f"run {run_id} has no artifact {name!r} ({exc}); was it logged by `quantdag backtest`?") from None
    return pl.read_parquet(path)


@click.command()
@click.argument("run_id", metavar="MLFLOW_RUN_ID")
@reports_errors
def reproduce(run_id: str) -> None:
    """Re-run the backtest of MLFLOW_RUN_ID (logged by `quantdag backtest`) and compare it bit for bit.

    Reads the run from the data dir's MLflow store. Exit 0 when the equity curve, trades and
    metrics are identical, 1 showing the first difference (and whether the candles or the code
    changed since), 2 when the run cannot be found or was not logged by `quantdag backtest`.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from quantdag.backtest import BacktestSettings
    from quantdag.cli.backtest import candles_hash, code_params, execute, prepare
    from quantdag.tracking.store import open_experiment

    config = load_project()
    if not (config.data_path / "mlflow.db").exists():
        raise InputError(f"no MLflow store at {config.data_path / 'mlflow.db'}; set QUANTDAG_DATA_DIR to the data dir of the run")
    open_experiment(config.data_path, "backtests")
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        raise InputError(f"no MLflow run {run_id!r} in {config.data_path / 'mlflow.db'}; copy the id from `quantdag backtest` or the MLflow UI") from None
    p: dict[str, str] = run.data.params
    if "cli.strategy" not in p:
        raise InputError(f"run {run_id} was not logged by `quantdag backtest` (no cli.* parameters): nothing to rerun it from")
    first, last = datetime.fromisoformat(p["cli.first_ts"]), datetime.fromisoformat(p["cli.last_ts"])
    settings = BacktestSettings(**json.loads(p["cli.settings_json"]))
    candle_file = Path(p["cli.candles"]) if p["cli.candles"] else None
    if candle_file is not None and not candle_file.is_file():
        raise InputError(f"the run read candles from {candle_file}, which no longer exists")
    if candle_file is None and p.get("exchange") != config.venue:
        raise InputError(f"the run read {p.get('exchange')!r} candles; this configuration's venue is {config.venue!r}: "
                         "set QUANTDAG_CONFIG to the configuration the run used")  # fmt: skip
    job = prepare(config, p["cli.strategy"], json.loads(p["cli.params_json"]), p["cli.market"], candle_file,
                  first.date(), last.date(), settings=settings)  # fmt: skip
    job.candles = job.candles.filter((pl.col("ts") >= first) & (pl.col("ts") <= last))
    click.echo(f"reproducing {run_id}: {job.strategy!r} on {job.market.key}, {job.candles.height} candles {first} .. {last}")
    notes = []
    if candles_hash(job.candles) != p["cli.data_sha256"]:
        notes.append(f"the candles differ from the run's ({p['cli.n_candles']} logged, {job.candles.height} now, hash changed)")
    now_code = code_params(job)
    for k, v in now_code.items():
        if p.get(k, "") != v:
            notes.append(f"{k}: {p.get(k, '')!r} then, {v!r} now")
    result = execute(job)
    differences = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fresh in (("equity.parquet", result.equity), ("trades.parquet", result.trades)):
            d = first_frame_difference(_logged_frame(run_id, name, Path(tmp)), fresh)
            if d is not None:
                differences.append(f"{name}: {d}")
    logged: dict[str, Any] = run.data.metrics
    for k, v in result.metrics.items():
        if isinstance(v, (int, float)) and math.isfinite(v) and k in logged and float(v) != logged[k]:
            differences.append(f"metric {k}: {logged[k]!r} was logged, {float(v)!r} now")
    for n in notes:
        click.echo(f"note: {n}")
    if differences:
        for d in differences:
            click.echo(f"DIFFERENT {d}")
        raise CheckFailed(f"run {run_id} did not reproduce ({len(differences)} difference(s))")
    click.echo(f"bit-identical: equity curve ({result.equity.height} rows), {result.trades.height} trades and "
               f"{sum(1 for k in result.metrics if k in logged)} metrics match run {run_id}")  # fmt: skip

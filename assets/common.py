"""Policies and helpers shared by every asset: defined once."""

from __future__ import annotations

import math
import numbers
import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg

from quantdag.errors import ExchangeUnavailable
from quantdag.stages import StageReport
from quantdag.store import WarehouseLocked
from resources.mlflow import UI_QUERY

#: Every DuckDB writer runs in this pool; the instance limits it to 1 (DuckDB: one writer process).
DUCKDB_POOL = "duckdb"

#: Only these are worth retrying: an exchange outage that outlasted the client's own retries, and a
#: DuckDB lock another process held too long. A deterministic failure (bad data, a read-only data
#: dir, a bug) fails at once: a retry would only repeat it and delay the alert.
TRANSIENT = (ExchangeUnavailable, WarehouseLocked)
MAX_RETRIES, RETRY_WAIT_SECONDS = 2, 5.0


@contextmanager
def retry_transient() -> Iterator[None]:
    """Turn a transient failure inside the block into a step retry; let every other error fail the step."""
    try:
        yield
    except TRANSIENT as exc:
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=RETRY_WAIT_SECONDS) from exc


def report_metadata(report: StageReport) -> Mapping[str, dg.MetadataValue]:
    """Row counts per market (``"SYMBOL:TF"``) as a table, plus totals."""
    names = sorted({k for counts in report.per_market.values() for k in counts})
    records = [
        dg.TableRecord({"market": market, **{n: int(counts.get(n, 0)) for n in names}})
        for market, counts in sorted(report.per_market.items())
    ]
    schema = dg.TableSchema(
        columns=[dg.TableColumn("market", "string"), *(dg.TableColumn(n, "int") for n in names)]
    )
    return {
        "rows_written": dg.MetadataValue.int(report.rows_written),
        "markets": dg.MetadataValue.int(len(report.per_market)),
        "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        "per_market": dg.MetadataValue.table(records=records, schema=schema),
    }


#: The MLflow UI that metadata links point at (``make mlflow-ui``), unless ``QUANTDAG_MLFLOW_UI`` is set.
MLFLOW_UI_ENV = "QUANTDAG_MLFLOW_UI"
MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"

#: Metrics that are fractions (0.123): shown in metadata tables as percentages, in a column ``<name> %``.
PERCENT_METRICS = frozenset({"total_return", "max_drawdown", "cagr", "volatility", "win_rate", "exposure"})


def mlflow_run_link(experiment_id: str, run_id: str) -> dg.MetadataValue:
    """A link to the run's page in the MLflow UI (its "Machine learning" view).

    The base URL is ``$QUANTDAG_MLFLOW_UI`` (default ``http://127.0.0.1:5000``) without any
    user or password it may hold: metadata is shown to everyone who opens Dagster.
    """
    base = urllib.parse.urlsplit((os.environ.get(MLFLOW_UI_ENV) or MLFLOW_UI_DEFAULT).strip())
    host = base.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{base.port}" if base.port else "")
    root = urllib.parse.urlunsplit((base.scheme, netloc, base.path.rstrip("/"), "", ""))
    return dg.MetadataValue.url(f"{root}/#/experiments/{experiment_id}/runs/{run_id}?{UI_QUERY}")


def mlflow_experiment_link(experiment_id: str) -> dg.MetadataValue:
    """A link to an experiment's page in the MLflow UI (see :func:`mlflow_run_link`)."""
    run_url = mlflow_run_link(experiment_id, "_").value
    return dg.MetadataValue.url(run_url.split("/runs/")[0] + f"?{UI_QUERY}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _cell(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    if _is_int(value) and name not in PERCENT_METRICS:
        return int(value)
    v = float(value)
    if not math.isfinite(v):
        return None
    return round(100 * v, 2) if name in PERCENT_METRICS else round(v, 3)


def metrics_table(per_market: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> dg.MetadataValue:
    """Metrics ``names`` per market (``"SYMBOL:TF"``, as :func:`report_metadata`), one row each
    (a text value, such as a run id, makes a string column).

    Fractions (:data:`PERCENT_METRICS`) are percentages in a column ``<name> %`` (0.1234 -> 12.34);
    other floats are rounded to 3 decimals; a NaN or infinite value is empty.
    """
    label = {n: f"{n} %" if n in PERCENT_METRICS else n for n in names}
    records = [
        dg.TableRecord({"market": market, **{label[n]: _cell(n, metrics.get(n)) for n in names}})
        for market, metrics in per_market.items()
    ]
    kinds = {n: "string" if any(isinstance(m.get(n), str) for m in per_market.values())
             else "int" if n not in PERCENT_METRICS and all(_is_int(m.get(n)) for m in per_market.values()) else "float"
             for n in names}  # fmt: skip
    schema = dg.TableSchema(columns=[
        dg.TableColumn("market", "string", description="SYMBOL:TF"),
        *(dg.TableColumn(label[n], kinds[n], description=f"{n}, in %" if n in PERCENT_METRICS else None) for n in names),
    ])  # fmt: skip
    return dg.MetadataValue.table(records=records, schema=schema)

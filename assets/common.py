"""Policies and helpers shared by every asset: defined once."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from quantdag.stages import StageReport

#: Every DuckDB writer runs in this pool; the instance limits it to 1 (DuckDB: one writer process).
DUCKDB_POOL = "duckdb"

#: Transient faults (exchange outages, a lock held too long) get a few spaced retries.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


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

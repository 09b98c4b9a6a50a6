"""Runs over many parameter sets: the dynamic partitions cut into contiguous single-run ranges.

A parameter set costs the engine milliseconds; a Dagster run costs a process, its imports and its
events. So the backtest job runs many parameter sets per run (``signals`` and ``backtests`` have a
single-run backfill policy), over a range of the ``param_sets`` partitions in their stored order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def contiguous_ranges(order: Sequence[str], wanted: Iterable[str]) -> list[list[str]]:
    """``wanted`` as runs of neighbours in ``order`` (the partitions' order): one list per range.

    Raises
    ------
    KeyError
        If a wanted key is not in ``order`` (register it as a partition first).
    """
    want = set(wanted)
    missing = want - set(order)
    if missing:
        raise KeyError(f"not partitions of param_sets: {sorted(missing)}")
    ranges: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key in want:
            current.append(key)
        elif current:
            ranges.append(current)
            current = []
    if current:
        ranges.append(current)
    return ranges


def range_tags_of(keys: Sequence[str]) -> dict[str, str]:
    """Tags that make one run cover the contiguous range ``keys`` (first to last)."""
    return {RANGE_START: keys[0], RANGE_END: keys[-1]}

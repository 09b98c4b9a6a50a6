"""Execution schedules: TWAP (equal slices) and VWAP (slices weighted by a stored volume profile).

A schedule is a list of :class:`ChildSlice` (when, how much); the slices are rounded to the lot
step and always add up to the parent quantity exactly (in lot units). Each child is sent with
``OrderManager.submit(..., intent=f"{parent_id}:{slice.index}", parent_id=parent_id)``, so a
restarted run never re-sends a slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, DataError

MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class ChildSlice:
    index: int
    ts_ms: int
    qty: float


def _split(qty: float, weights: np.ndarray, step: float) -> list[float]:
    if not (math.isfinite(qty) and qty > 0):
        raise ConfigurationError(f"parent qty must be > 0, got {qty!r}")
    units = round(qty / step)
    if abs(units * step - qty) > step * 1e-6:
        raise ConfigurationError(f"parent qty {qty} is not a multiple of the lot step {step}")
    w = np.asarray(weights, float)
    if w.size == 0 or (w < 0).any() or w.sum() <= 0:
        raise DataError("schedule weights must be non-negative with a positive sum")
    raw = units * w / w.sum()
    alloc = np.floor(raw).astype(np.int64)
    for i in np.argsort(-(raw - alloc), kind="stable")[: units - int(alloc.sum())]:  # largest remainders
        alloc[i] += 1
    return [int(a) * step for a in alloc]


def _times(start_ms: int, end_ms: int, n: int) -> list[int]:
    if n < 1 or end_ms <= start_ms:
        raise ConfigurationError(f"need n_slices >= 1 and end > start, got {n}, {start_ms}..{end_ms}")
    return [start_ms + (end_ms - start_ms) * i // n for i in range(n)]


def twap_schedule(qty: float, start_ms: int, end_ms: int, n_slices: int, *, step: float = 1e-8) -> list[ChildSlice]:
    """``n_slices`` equal slices at equal intervals from ``start_ms``."""
    times = _times(start_ms, end_ms, n_slices)
    return [ChildSlice(i, t, q) for i, (t, q) in enumerate(zip(times, _split(qty, np.ones(n_slices), step)))]


def volume_profile(candles: pl.DataFrame) -> np.ndarray:
    """Share of the day's volume traded in each UTC hour (24 weights summing to 1) from stored candles
    (``ts`` datetime or epoch ms, ``volume``)."""
    ts = candles["ts"]
    hours = (ts.dt.hour() if ts.dtype != pl.Int64 else ((ts // MS_PER_HOUR) % 24)).to_numpy()
    vol = candles["volume"].to_numpy().astype(float)
    prof = np.bincount(hours.astype(np.int64), weights=vol, minlength=24)[:24]
    if prof.sum() <= 0:
        raise DataError("candles carry no volume")
    return prof / prof.sum()


def vwap_schedule(qty: float, start_ms: int, end_ms: int, n_slices: int, profile: np.ndarray, *,
                  step: float = 1e-8) -> list[ChildSlice]:
    """Slices at equal intervals, each sized by the profile's volume share of its interval
    (equal slices when the profile has no volume anywhere in the window)."""
    times = _times(start_ms, end_ms, n_slices)
    bounds = [*times, end_ms]
    weights = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        hours = np.arange(a, b, 60_000) // MS_PER_HOUR % 24  # minute grid over the interval
        weights.append(float(np.asarray(profile)[hours].sum()) if len(hours) else 0.0)
    w = np.array(weights)
    if w.sum() <= 0:
        w = np.ones(n_slices)
    return [ChildSlice(i, t, q) for i, (t, q) in enumerate(zip(times, _split(qty, w, step)))]

"""Parameter-stability heatmap: the objective over a 2-D slice of the grid, the chosen point marked."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError
from quantdag.optimize.grid import MINIMISE


def heatmap(
    results: pl.DataFrame,
    x: str,
    y: str,
    objective: str,
    *,
    chosen: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
    fmt: str | None = None,
) -> bytes:
    """Image bytes (PNG, or SVG when ``fmt``/the path suffix says so) of ``objective`` over ``x`` and
    ``y``; other parameters are collapsed to their best value per cell. Written to ``path`` if given."""
    for c in (x, y, objective):
        if c not in results.columns:
            raise ConfigurationError(f"heatmap: column {c!r} not in the results; columns: {results.columns}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = pl.col(objective).min() if objective in MINIMISE else pl.col(objective).max()
    cells = results.filter(pl.col(objective).cast(pl.Float64).is_finite()).group_by(x, y).agg(agg)
    xs = sorted(results[x].unique().to_list())
    ys = sorted(results[y].unique().to_list())
    z = np.full((len(ys), len(xs)), np.nan)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for a, b, v in cells.iter_rows():
        z[yi[b], xi[a]] = v
    fig, ax = plt.subplots(figsize=(8, 6))
    im = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label=objective)
    step = lambda n: max(1, n // 12)  # noqa: E731
    ax.set_xticks(range(0, len(xs), step(len(xs))), [str(v) for v in xs[:: step(len(xs))]])
    ax.set_yticks(range(0, len(ys), step(len(ys))), [str(v) for v in ys[:: step(len(ys))]])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if chosen is not None and chosen.get(x) in xi and chosen.get(y) in yi:
        ax.plot(xi[chosen[x]], yi[chosen[y]], marker="*", color="red", markersize=16, markeredgecolor="white")
        ax.set_title(f"{objective}; chosen {x}={chosen[x]}, {y}={chosen[y]}")
    fmt = fmt or (Path(path).suffix.lstrip(".") if path is not None else "png") or "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data

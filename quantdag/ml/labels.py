"""Labels for supervised models, each stamped with ``known_at``: the time its outcome is known.

A label at candle ``t`` describes what happens *after* ``t``'s close, so it is unknown until a
later candle closes. ``known_at`` (the close time of the candle that settles it) makes purging
exact: a training row may be used for a test block only if its ``known_at`` is before the
block starts (:mod:`quantdag.ml.validation`). Three kinds (López de Prado, AFML ch. 3):

* ``fixed`` -- the log return from close ``t`` to close ``t + horizon``; ``y = 1`` if above
  ``threshold``. Known at the close of ``t + horizon``.
* ``triple_barrier`` -- barriers at ``± mult x`` the trailing volatility (the ``vol_window``
  std of 1-candle log returns, known at ``t``) and a vertical one at ``t + horizon``; ``y = 1``
  if the upper barrier is touched first (a tie inside one candle counts as the lower first).
  Known at the close of the touching candle, so earlier than ``fixed`` when a barrier is hit.
* ``meta`` -- on a rule strategy's (long) entries only: ``y = 1`` if the trade's triple-barrier
  outcome was profitable, the model then learns *whether to take* the rule's signal. The rule is
  a registered strategy (``rule``, ``rule_params``); the ``ml_model`` strategy of a meta model
  enters only on the rule's entries the model takes, and exits on the rule's exits.

Rows whose outcome runs past the data have a null label and null ``known_at``; they must not be
trained on (and are not written).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from quantdag.data.frames import CANDLE_KEY, MARKET_KEY, UTC_MS, require_columns, utc_ms
from quantdag.errors import ConfigurationError, DataError
from quantdag.ml import nb
from quantdag.timeframes import timeframe_ms

LabelKind = Literal["fixed", "triple_barrier", "meta"]
LABEL_KINDS = ("fixed", "triple_barrier", "meta")

#: Columns and types of ``ml.labels`` (besides the candle key).
LABEL_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": UTC_MS,
    "kind": pl.String(), "y": pl.Int8(), "ret": pl.Float64(), "known_at": UTC_MS,
}  # fmt: skip


@dataclass(frozen=True)
class LabelConfig:
    """How labels are made.

    Parameters
    ----------
    kind
        ``fixed``, ``triple_barrier`` or ``meta`` (see the module docstring).
    horizon
        Candles after ``t`` the outcome may take (the vertical barrier).
    threshold
        ``fixed``: minimum log return for ``y = 1`` (e.g. round-trip costs).
    up_mult, down_mult
        Barrier widths in trailing volatilities, scaled by ``sqrt(horizon)``.
    vol_window
        Candles of the trailing volatility.
    rule, rule_params
        ``meta``: the registered rule strategy whose entries are labelled, and its parameters
        (the pipeline needs it; engine code may pass the entries to :func:`compute_labels` instead).
    """

    kind: LabelKind = "triple_barrier"
    horizon: int = 24
    threshold: float = 0.0
    up_mult: float = 1.0
    down_mult: float = 1.0
    vol_window: int = 48
    rule: str = ""
    rule_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in LABEL_KINDS:
            raise ConfigurationError(f"label kind must be one of {LABEL_KINDS}, got {self.kind!r}")
        if self.rule and self.kind != "meta":
            raise ConfigurationError(f"label kind {self.kind!r} labels every candle: a rule ({self.rule!r}) is for 'meta' only")
        if self.rule:
            from quantdag.strategies import create_strategy

            try:
                rule = create_strategy(self.rule, dict(self.rule_params))
            except Exception as exc:  # unknown name or bad parameters: say which
                raise ConfigurationError(f"meta label rule {self.rule!r} {dict(self.rule_params)}: {exc}") from None
            object.__setattr__(self, "rule_params", dict(rule.params))
        for name in ("horizon", "vol_window"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigurationError(f"label {name} must be an int >= 1, got {v!r}")
        for name in ("up_mult", "down_mult"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise ConfigurationError(f"label {name} must be > 0, got {v!r}")

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rule_params": dict(self.rule_params)}

    def rule_strategy(self) -> Any:
        """The ``meta`` rule as a strategy (None for other kinds)."""
        from quantdag.strategies import create_strategy

        return create_strategy(self.rule, dict(self.rule_params)) if self.rule else None


def trailing_vol(close: np.ndarray, window: int) -> np.ndarray:
    """Std of the last ``window`` 1-candle log returns, known at the close of each candle."""
    r = np.full(close.shape[0], np.nan)
    r[1:] = np.diff(np.log(close))
    return nb.rolling_std_nb(r, window)


def market_labels(
    ts_ms: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    tf_ms: int,
    cfg: LabelConfig,
    entries: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, ret, known_at_ms)`` of one gap-free market; y = -1 / NaN / -1 where unknown or not labelled."""
    n = close.shape[0]
    y = np.full(n, -1, dtype=np.int8)
    ret = np.full(n, np.nan)
    known = np.full(n, -1, dtype=np.int64)
    h = cfg.horizon
    if cfg.kind == "fixed":
        if n > h:
            ret[: n - h] = np.log(close[h:] / close[: n - h])
            known[: n - h] = ts_ms[h:] + tf_ms
            y[: n - h] = (ret[: n - h] > cfg.threshold).astype(np.int8)
        return y, ret, known
    vol = trailing_vol(close, cfg.vol_window) * np.sqrt(h)
    lab, exit_ix, r = nb.triple_barrier_nb(close, high, low, vol, h, float(cfg.up_mult), float(cfg.down_mult))
    ok = exit_ix >= 0
    if cfg.kind == "meta":
        if entries is None:
            raise ConfigurationError("meta labels need the rule strategy's entries")
        ok &= np.asarray(entries, dtype=bool)
        y[ok] = (r[ok] > 0).astype(np.int8)
    else:
        y[ok] = (lab[ok] == 1).astype(np.int8)
    ret[ok] = r[ok]
    known[ok] = ts_ms[exit_ix[ok]] + tf_ms
    return y, ret, known


def compute_labels(candles: pl.DataFrame, cfg: LabelConfig, entries: pl.DataFrame | None = None) -> pl.DataFrame:
    """``ml.labels`` rows (:data:`LABEL_SCHEMA`) of one or more markets' gap-free CANDLES.

    Only rows whose outcome is known are returned (and for ``meta``, only entry candles).

    Parameters
    ----------
    entries
        For ``meta``: the candle key plus a Boolean ``entry`` column (a rule strategy's signals).

    Raises
    ------
    DataError
        On missing columns, duplicate keys or missing entries for ``meta``.
    """
    require_columns(candles, (*CANDLE_KEY, "high", "low", "close"), "candles")
    frame = candles.with_columns(utc_ms(candles, "ts")).sort(CANDLE_KEY)
    if frame.select(pl.struct(CANDLE_KEY).is_duplicated().any()).item():
        raise DataError("compute_labels needs candles unique on (exchange, symbol, timeframe, ts)")
    if cfg.kind == "meta":
        if entries is None:
            raise DataError("meta labels need a rule strategy's entries (candle key + 'entry')")
        require_columns(entries, (*CANDLE_KEY, "entry"), "entries")
        frame = frame.join(entries.select(*CANDLE_KEY, "entry").with_columns(utc_ms(entries, "ts")), on=list(CANDLE_KEY), how="left")
    parts = []
    for (_, _, timeframe), rows in frame.group_by(MARKET_KEY, maintain_order=True):
        ts = rows["ts"].dt.epoch("ms").to_numpy()
        ent = rows["entry"].fill_null(False).to_numpy() if cfg.kind == "meta" else None
        y, ret, known = market_labels(ts, *(rows[c].cast(pl.Float64).to_numpy() for c in ("high", "low", "close")),
                                      timeframe_ms(str(timeframe)), cfg, ent)  # fmt: skip
        keep = known >= 0
        parts.append(
            rows.select(CANDLE_KEY).filter(pl.Series(keep)).with_columns(
                kind=pl.lit(cfg.kind), y=pl.Series(y[keep], dtype=pl.Int8), ret=pl.Series(ret[keep]),
                known_at=pl.Series(known[keep]).cast(UTC_MS),
            )  # fmt: skip
        )
    return pl.concat(parts).cast(LABEL_SCHEMA) if parts else pl.DataFrame(schema=LABEL_SCHEMA)


def check_label_causality(labels: pl.DataFrame, tf_ms: int | dict[str, int] | None = None) -> list[str]:
    """Labels that claim to be known before their candle closes (a label cannot be known at ``t``).

    ``known_at`` must be strictly after the candle's close (``ts + timeframe``): a label known at
    its own candle's close would be a feature, not an outcome.
    """
    tfs = labels["timeframe"].unique().to_list()
    bad: list[str] = []
    for tf in tfs:
        step = timeframe_ms(tf)
        rows = labels.filter(pl.col("timeframe") == tf)
        close_ms = rows["ts"].dt.epoch("ms") + step
        early = rows.filter((rows["known_at"].dt.epoch("ms") <= close_ms) | rows["known_at"].is_null())
        if early.height:
            r = early.row(0, named=True)
            bad.append(f"label at {r['symbol']} {tf} ts={r['ts']} is known at {r['known_at']}, not after its candle closes")
    return bad


def check_label_lookahead(
    candles: pl.DataFrame,
    label_fn: Any,
    cuts: int = 6,
) -> list[str]:
    """Recompute labels on histories cut at a few times T: every label that claims to be known by
    the close of T must come out identical from the candles up to T alone.

    ``label_fn(candles) -> labels frame`` (e.g. ``lambda c: compute_labels(c, cfg)``). A label
    whose ``known_at`` understates when its outcome is settled (it peeks) is missing or different
    in the cut history and is reported; an empty list means the ``known_at`` stamps are honest.
    """
    frame = candles.with_columns(utc_ms(candles, "ts"))
    full = label_fn(frame)
    problems = check_label_causality(full)
    times = frame["ts"].unique().sort()
    n = times.len()
    for k in sorted({int(n * f) for f in np.linspace(0.2, 0.95, cuts)}):
        t_cut = times[k]
        step = pl.col("timeframe").map_elements(timeframe_ms, return_dtype=pl.Int64)
        settled = full.filter(pl.col("known_at").dt.epoch("ms") <= pl.lit(t_cut).cast(UTC_MS).dt.epoch("ms") + step)
        cut = label_fn(frame.filter(pl.col("ts") <= t_cut))
        joined = settled.join(cut, on=[*CANDLE_KEY, "kind"], how="left", suffix="_cut")
        differ = joined.filter(
            pl.col("y_cut").is_null() | (pl.col("y") != pl.col("y_cut")) | ~pl.col("ret").eq_missing(pl.col("ret_cut"))
            | (pl.col("known_at") != pl.col("known_at_cut"))
        )  # fmt: skip
        if differ.height:
            r = differ.row(0, named=True)
            problems.append(
                f"label at {r['symbol']} ts={r['ts']} claims to be known at {r['known_at']} but the candles up to {t_cut} "
                f"give y={r['y_cut']} ret={r['ret_cut']} instead of y={r['y']} ret={r['ret']} ({differ.height} such labels)"
            )
    return problems

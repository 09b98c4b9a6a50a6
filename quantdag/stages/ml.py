"""Machine learning: ``market.candles`` -> ``ml.features``, ``ml.labels`` -> a registered model -> ``ml.predictions``.

* :func:`build_features` -- per daily window, warmed by the features' look-back of earlier candles
  (finite-window features: a window's rows equal a full-history computation bit for bit);
* :func:`build_labels` -- every market's labels recomputed (the last ones settle as candles close);
* :func:`train_model` -- a walk-forward training purged by ``known_at``, its out-of-sample backtest
  (DSR, PBO), one MLflow run, a new registered version, promoted to ``champion`` only if it beats
  the current one out of sample (:mod:`quantdag.ml.registry`);
* :func:`build_predictions` -- the champion's ``P(up)`` per candle, and the training's
  out-of-sample predictions, into ``ml.predictions``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import polars as pl

from quantdag.errors import DataError
from quantdag.indicators import check_column_name
from quantdag.markets import CANDLE_KEY, Market, Window
from quantdag.data.event_starts import EVENT_COLUMNS
from quantdag.ml.features import EVENTS_TABLE, FeatureConfig, compute_features, features_schema
from quantdag.ml.labels import LABEL_SCHEMA, LabelConfig, compute_labels
from quantdag.ml.registry import CHAMPION, Promotion, load_version, log_training, promote, resolve
from quantdag.ml.training import TrainingConfig, oos_backtest, predict_frame, train
from quantdag.stages.common import StageReport, market_slice, read_candles, with_events
from quantdag.store import Slice, Warehouse
from quantdag.timeframes import MS_PER_DAY, timeframe_ms

FEATURES, LABELS, PREDICTIONS = "ml.features", "ml.labels", "ml.predictions"

StartRun = Callable[..., AbstractContextManager[Any]]

#: Below this many candle times per walk-forward block a training is skipped (no run, no version); the
#: minimum of labelled rows is ``TrainingConfig.min_rows`` (``ml.min_training_rows``).
MIN_TIMES_PER_BLOCK = 24


class TrainingSkipped(DataError):
    """Too little labelled history to train and validate a model (the asset then materialises nothing)."""


def feature_lookback_days(markets: Sequence[Market], cfg: FeatureConfig) -> int:
    """Whole earlier days of candles the features of a day's first candle depend on."""
    return max((math.ceil(cfg.warmup(m.timeframe) * timeframe_ms(m.timeframe) / MS_PER_DAY) for m in markets), default=0)


def _peers(markets: Sequence[Market], cfg: FeatureConfig) -> list[Market]:
    """The correlated markets ``markets`` need (same venue and timeframe), not already among them."""
    have = {m.key for m in markets}
    out = {}
    for m in markets:
        for sym in cfg.correlated:
            peer = Market(m.exchange, sym, m.timeframe)
            if peer.key not in have:
                out[peer.key] = peer
    return list(out.values())


def build_features(wh: Warehouse, windows: Mapping[Market, Sequence[Window]], cfg: FeatureConfig) -> StageReport:
    """``cfg``'s features of each window into ``ml.features`` (one transaction; idempotent).

    Raises
    ------
    DataError
        If stored candles break the feature contract, e.g. a correlated market is missing (nothing is written).
    """
    t0 = time.perf_counter()
    report = StageReport()
    markets = list(windows)
    back = timedelta(days=feature_lookback_days(markets, cfg))
    writes: list[tuple[Market, Window, pl.DataFrame]] = []
    for m, wins in windows.items():
        for w in wins:
            span = (w[0] - back, w[1])
            slices = [market_slice(p, span) for p in (m, *_peers([m], cfg))]
            candles = wh.read("market.candles", slices, order_by=CANDLE_KEY)
            own = candles.filter(pl.col("symbol") == m.symbol)
            # tables a feature group reads besides candles (e.g. sentiment.bars), keyed like candles
            extra = {t: _input_table(wh, t, m, span, own) for t in cfg.inputs}
            if own.height == 0:
                writes.append((m, w, pl.DataFrame(schema=features_schema(cfg, m.timeframe))))
                continue
            feats = compute_features(candles, cfg, warm_start=int(w[0].timestamp() * 1000), extra=extra)
            feats = feats.filter(pl.col("symbol") == m.symbol)
            report.add(m, context_rows=own.height, rows=feats.height)
            writes.append((m, w, feats))
    columns = [c for c in features_schema(cfg) if c not in CANDLE_KEY]
    with wh.transaction() as con:
        add_feature_columns(con, columns)
        for m, w, feats in writes:
            report.rows_written += Warehouse.replace(con, FEATURES, feats, [market_slice(m, w)], order_by=CANDLE_KEY)
    report.seconds = time.perf_counter() - t0
    return report


def _input_table(wh: Warehouse, table: str, m: Market, span: Window, own: pl.DataFrame) -> pl.DataFrame:
    """A feature group's extra table for market ``m`` over ``span``, keyed like its candles ``own``:
    ``market.events`` as per-candle start counts (the columns a strategy frame carries), others as stored."""
    if table == EVENTS_TABLE:
        return with_events(wh, m, own.select(CANDLE_KEY)).select(*CANDLE_KEY, *EVENT_COLUMNS)
    return wh.read(table, [market_slice(m, span)], order_by=CANDLE_KEY)


def add_feature_columns(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> list[str]:
    """Add the DOUBLE ``columns`` that ``ml.features`` lacks (inside the write's transaction)."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ml' AND table_name = 'features'"
    ).fetchall()}  # fmt: skip
    added = [c for c in columns if c not in have]
    for c in added:
        check_column_name(c, ("column",))
        con.execute(f'ALTER TABLE {FEATURES} ADD COLUMN IF NOT EXISTS "{c}" DOUBLE')
    return added


def build_labels(wh: Warehouse, markets: Sequence[Market], cfg: LabelConfig) -> StageReport:
    """Every market's labels of ``cfg``'s kind, recomputed over its stored candles, into ``ml.labels``.

    Labels near the end of the data are missing until their outcome is known, so the whole
    history is rewritten (cheap: one vectorised pass per market).
    """
    t0 = time.perf_counter()
    report = StageReport()
    writes = []
    rule = cfg.rule_strategy()
    for m in markets:
        candles = read_candles(wh, m, peers=rule.frame_peers if rule else ())
        if not candles.height:
            labels = pl.DataFrame(schema=LABEL_SCHEMA)
        else:
            labels = compute_labels(candles, cfg, rule_signals(rule, m, candles) if rule else None)
        report.add(m, candles=candles.height, rows=labels.height)
        writes.append((m, labels))
    with wh.transaction() as con:
        for m, labels in writes:
            where = Slice(where={**m.where, "kind": cfg.kind}, time_column=None)
            report.rows_written += Warehouse.replace(con, LABELS, labels, [where], order_by=CANDLE_KEY)
    report.seconds = time.perf_counter() - t0
    return report


def rule_signals(rule: Any, m: Market, frame: pl.DataFrame) -> pl.DataFrame:
    """A meta model's rule strategy on market ``m``'s strategy frame: candle key + ``entry``, ``exit``.

    Raises
    ------
    DataError
        If the rule looks ahead (a meta label on a peeking rule's entries would be a peek too).
    """
    from quantdag.strategies import check_lookahead

    report = check_lookahead(rule, frame)
    if not report.ok:
        raise DataError(f"meta label rule {rule.name} looks ahead on {m.key}: {report.summary()}")
    sig = rule.signals(frame)
    return sig.select(pl.lit(m.exchange).alias("exchange"), pl.lit(m.symbol).alias("symbol"), pl.lit(m.timeframe).alias("timeframe"),
                      "ts", pl.col("entry").fill_null(False), pl.col("exit").fill_null(False))  # fmt: skip


@dataclass
class TrainingReport:
    """What a training did: the version, its promotion, scores and the out-of-sample backtest."""

    model: str
    version: str
    promotion: Promotion
    metrics: dict[str, float]
    per_market: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: str = ""
    experiment_id: str = ""
    seconds: float = 0.0


def read_training_data(
    wh: Warehouse, markets: Sequence[Market], kind: str, until: datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Candles, features and labels (of ``kind``) of ``markets``, as stored; with ``until``, only
    what was known by then (candles and features before it, labels whose outcome was known)."""
    slices = [market_slice(m, (datetime(1970, 1, 1, tzinfo=timezone.utc), until)) if until else market_slice(m) for m in markets]
    candles = wh.read("market.candles", slices, order_by=CANDLE_KEY)
    features = wh.read(FEATURES, slices, order_by=CANDLE_KEY)
    labels = wh.read(LABELS, [Slice(where={**m.where, "kind": kind}, time_column=None) for m in markets], order_by=CANDLE_KEY)
    if until is not None:
        labels = labels.filter(pl.col("known_at") <= until)
    return candles, features, labels


def train_model(
    wh: Warehouse, markets: Sequence[Market], cfg: TrainingConfig, *, model_name: str, start_run: StartRun,
    experiment: str = "ml", holdout_days: int = 0,
) -> TrainingReport:  # fmt: skip
    """Train on the stored features and labels of ``markets``, log and register, then promote.

    ``start_run(experiment, run_name=..., tags=...)`` opens the MLflow run (the pipeline's resource).
    ``holdout_days`` leaves the last days out of the training entirely (not even a label may
    reach into them), so the ``ml_model`` strategy's backtest of those days is a forward test.

    Raises
    ------
    DataError
        If the markets have no features or labels yet.
    """
    t0 = time.perf_counter()
    until = None
    if holdout_days:
        last = wh.query("SELECT max(ts) AS t FROM market.candles WHERE " + " OR ".join(
            "(exchange = ? AND symbol = ? AND timeframe = ?)" for _ in markets), [v for m in markets for v in m.where.values()])["t"][0]
        if last is None:
            raise DataError("no candles of the ML markets are stored yet")
        until = (last - timedelta(days=holdout_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    candles, features, labels = read_training_data(wh, markets, cfg.labels.kind, until)
    expected = [c for c in features_schema(cfg.features) if c not in CANDLE_KEY]
    missing = [c for c in expected if c not in features.columns]
    if missing:
        raise DataError(f"ml.features lacks configured column(s) {missing[:5]}: materialize ml_features first")
    stored, features = features, features.select(*CANDLE_KEY, *expected)
    usable = features.join(labels.select(CANDLE_KEY), on=list(CANDLE_KEY), how="inner")
    blocks = cfg.n_splits + cfg.min_train_blocks
    if usable.height < cfg.min_rows or usable["ts"].n_unique() < MIN_TIMES_PER_BLOCK * blocks:
        raise TrainingSkipped(
            f"{usable.height} labelled candles at {usable['ts'].n_unique()} times are too few to train and validate "
            f"(need >= {cfg.min_rows} (ml.min_training_rows) and >= {MIN_TIMES_PER_BLOCK} times in each of {blocks} time blocks): store more history"
        )
    result = train(features, labels, cfg)
    rule = cfg.labels.rule_strategy()
    signals = pl.concat([rule_signals(rule, m, read_candles(wh, m, peers=rule.frame_peers)) for m in markets]) if rule else None
    backtest = oos_backtest(candles, result.oos, cfg, rule=signals)
    with start_run(experiment, run_name=f"train {model_name}", tags={"model": model_name}) as run:
        info = log_training(result, backtest, model_name=model_name)
        promotion = promote(info, result.oos, candles, labels, features=stored)
        import mlflow

        mlflow.set_tags({"promotion": promotion.alias, "promotion_reason": promotion.reason[:500]})
    return TrainingReport(model_name, info.version, promotion, {**result.metrics, **backtest.metrics()}, backtest.per_market,
                          run.info.run_id, run.info.experiment_id, time.perf_counter() - t0)  # fmt: skip


def build_predictions(wh: Warehouse, markets: Sequence[Market], model_name: str, alias: str = CHAMPION) -> StageReport:
    """The ``alias`` version's ``P(up)`` for every stored feature row of ``markets`` after its training
    data (``oos`` false: a forward test), and its training's walk-forward out-of-sample predictions
    (``oos`` true), into ``ml.predictions``: every row is out of sample.

    With no such version nothing is written (a report with zero rows).
    """
    import mlflow

    t0 = time.perf_counter()
    report = StageReport()
    info = resolve(model_name, alias)
    if info is None:
        return report
    model = load_version(info)
    local = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path="oos_predictions.parquet")
    oos_all = pl.read_parquet(local)
    writes = []
    for m in markets:
        feats = wh.read(FEATURES, [market_slice(m)], order_by=CANDLE_KEY)
        missing = [c for c in info.feature_names if c not in feats.columns]
        if feats.height == 0 or missing:
            continue
        # the final model's predictions only where they are out of sample: after its training data
        final = predict_frame(model, feats, info.feature_names).with_columns(oos=pl.lit(False))
        final = final.filter(pl.col("ts").dt.epoch("ms") >= info.train_end_ms)
        oos = oos_all.filter((pl.col("exchange") == m.exchange) & (pl.col("symbol") == m.symbol)
                             & (pl.col("timeframe") == m.timeframe)).with_columns(oos=pl.lit(True))  # fmt: skip
        rows = pl.concat([final, oos.select(final.columns)]).with_columns(
            model=pl.lit(model_name), version=pl.lit(int(info.version), dtype=pl.Int32)
        )
        report.add(m, rows=rows.height, oos_rows=oos.height)
        writes.append((m, rows))
    with wh.transaction() as con:
        for m, rows in writes:
            where = Slice(where={**m.where, "model": model_name, "version": int(info.version)}, time_column=None)
            report.rows_written += Warehouse.replace(con, PREDICTIONS, rows, [where], order_by=CANDLE_KEY)
    report.seconds = time.perf_counter() - t0
    return report



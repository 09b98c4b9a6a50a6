"""Labels: the triple barrier against a plain loop, known_at stamps, a peeking label caught."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from quantdag.errors import ConfigurationError, DataError
from quantdag.ml import nb
from quantdag.ml.labels import LabelConfig, check_label_lookahead, compute_labels

HOUR = 3_600_000


def _barrier_reference(close, high, low, vol, h, up, dn):
    n = len(close)
    out = []
    for t in range(n):
        if np.isnan(vol[t]) or vol[t] <= 0:
            out.append((0, -1, np.nan))
            continue
        u, d = close[t] * np.exp(up * vol[t]), close[t] * np.exp(-dn * vol[t])
        hit = None
        for j in range(t + 1, min(t + h, n - 1) + 1):
            if low[j] <= d:
                hit = (-1, j, np.log(d / close[t]))
                break
            if high[j] >= u:
                hit = (1, j, np.log(u / close[t]))
                break
        if hit is None:
            hit = (0, t + h, np.log(close[t + h] / close[t])) if t + h < n else (0, -1, np.nan)
        out.append(hit)
    return out


def test_triple_barrier_kernel_matches_plain_loop():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    high, low = close * np.exp(np.abs(rng.normal(0, 0.004, 400))), close * np.exp(-np.abs(rng.normal(0, 0.004, 400)))
    vol = np.where(rng.random(400) < 0.05, np.nan, 0.02)
    label, ix, ret = nb.triple_barrier_nb(close, high, low, vol, 12, 1.0, 1.5)
    ref = _barrier_reference(close, high, low, vol, 12, 1.0, 1.5)
    assert label.tolist() == [r[0] for r in ref]
    assert ix.tolist() == [r[1] for r in ref]
    np.testing.assert_allclose(ret, [r[2] for r in ref], rtol=1e-12)
    assert {-1, 0, 1} <= set(label.tolist())


def test_triple_barrier_tie_in_one_candle_counts_lower_first():
    close = np.array([100.0, 100.0])
    label, ix, _ = nb.triple_barrier_nb(close, np.array([100.0, 120.0]), np.array([100.0, 80.0]), np.array([0.05, 0.05]), 1, 1.0, 1.0)
    assert label[0] == -1 and ix[0] == 1


def test_fixed_labels_known_when_the_horizon_candle_closes(candles):
    lab = compute_labels(candles, LabelConfig(kind="fixed", horizon=5))
    one = lab.filter(pl.col("symbol") == "BTC/USDT").sort("ts")
    gap = (one["known_at"].dt.epoch("ms") - one["ts"].dt.epoch("ms")).unique().to_list()
    assert gap == [6 * HOUR]
    c = candles.filter(pl.col("symbol") == "BTC/USDT").sort("ts")["close"].to_numpy()
    np.testing.assert_allclose(one["ret"].to_numpy(), np.log(c[5:] / c[:-5]))
    assert one["y"].to_list() == (one["ret"] > 0).cast(pl.Int8).to_list()


@pytest.mark.parametrize("kind", ["fixed", "triple_barrier"])
def test_labels_known_at_is_honest(candles, kind):
    cfg = LabelConfig(kind=kind, horizon=12)
    assert check_label_lookahead(candles, lambda c: compute_labels(c, cfg)) == []


def test_peeking_label_fixture_fails_the_check(candles):
    def peeking(c):  # claims to be known one candle after ts, but its outcome is 12 candles out
        lab = compute_labels(c, LabelConfig(kind="fixed", horizon=12))
        return lab.with_columns(known_at=pl.col("ts") + pl.duration(hours=2))

    problems = check_label_lookahead(candles, peeking)
    assert problems and "claims to be known" in problems[0]


def test_triple_barrier_label_known_earlier_than_its_horizon(candles):
    lab = compute_labels(candles, LabelConfig(kind="triple_barrier", horizon=24, up_mult=0.5, down_mult=0.5))
    gap = (lab["known_at"].dt.epoch("ms") - lab["ts"].dt.epoch("ms")) // HOUR
    assert gap.min() >= 2 and gap.max() <= 25 and (gap < 25).mean() > 0.5


def test_meta_labels_only_on_rule_entries(candles):
    entries = candles.select("exchange", "symbol", "timeframe", "ts").with_columns(
        entry=(pl.col("ts").dt.hour() == 9)
    )
    lab = compute_labels(candles, LabelConfig(kind="meta", horizon=6), entries)
    assert lab.height > 100 and set(lab["ts"].dt.hour().unique().to_list()) == {9}
    assert lab["y"].to_list() == (lab["ret"] > 0).cast(pl.Int8).to_list()
    with pytest.raises(DataError, match="entries"):
        compute_labels(candles, LabelConfig(kind="meta"))


def test_bad_label_config_names_the_value():
    with pytest.raises(ConfigurationError, match="horizon"):
        LabelConfig(horizon=0)
    with pytest.raises(ConfigurationError, match="kind"):
        LabelConfig(kind="sideways")  # type: ignore[arg-type]


def test_a_meta_rule_is_checked_and_named():
    cfg = LabelConfig(kind="meta", rule="sma_cross", rule_params={"fast": 5})
    assert cfg.rule_params["fast"] == 5 and cfg.rule_params["slow"] == 50  # the rule's defaults filled in
    assert cfg.rule_strategy().name == "sma_cross"
    with pytest.raises(ConfigurationError, match="no_such_rule"):
        LabelConfig(kind="meta", rule="no_such_rule")
    with pytest.raises(ConfigurationError, match="fast"):
        LabelConfig(kind="meta", rule="sma_cross", rule_params={"fast": -3})
    with pytest.raises(ConfigurationError, match="meta"):
        LabelConfig(kind="fixed", rule="sma_cross")


def test_the_pipeline_needs_a_rule_for_meta_labels():
    from quantdag.config import MlSettings

    with pytest.raises(ValueError, match="labels.rule"):
        MlSettings(labels={"kind": "meta"})
    assert MlSettings(labels={"kind": "meta", "rule": "rsi"}).training_config().labels.rule == "rsi"

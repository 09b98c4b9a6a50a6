"""The ``sentiment`` strategy (threshold and contrarian) and the consensus' sentiment filter, on a candle
frame that carries sentiment columns as the pipeline's does; both pass the look-ahead check."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.errors import ConfigurationError
from quantdag.strategies import check_lookahead, create_strategy, list_strategies


def _frame(sentiment: list[float]) -> pl.DataFrame:
    n = len(sentiment)
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return pl.DataFrame({
        "ts": [t0 + timedelta(hours=i) for i in range(n)], "open": close, "high": close * 1.01, "low": close * 0.99,
        "close": close, "volume": np.full(n, 10.0), "sent_count": pl.Series([1] * n, dtype=pl.Int32),
        "sent_mean": sentiment, "sent_dispersion": [0.0] * n, "sent_decayed": sentiment,
    }).with_columns(pl.col("ts").dt.cast_time_unit("ms"))  # fmt: skip


def test_sentiment_strategy_is_registered_with_both_modes() -> None:
    assert "sentiment" in list_strategies()
    assert create_strategy("sentiment", {"mode": "contrarian", "entry_level": 0.3}).params["mode"] == "contrarian"
    with pytest.raises(ConfigurationError, match="mode"):
        create_strategy("sentiment", {"mode": "vibes"})
    with pytest.raises(ConfigurationError, match="exit_level < entry_level"):
        create_strategy("sentiment", {"entry_level": 0.1, "exit_level": 0.2})


def test_threshold_mode_enters_when_mood_crosses_up_and_exits_when_it_fades() -> None:
    s = [0.0, 0.05, 0.2, 0.3, 0.05, -0.1, 0.0, 0.15]
    sig = create_strategy("sentiment", {"entry_level": 0.1, "exit_level": 0.0}).signals(_frame(s))
    assert sig["entry"].to_list() == [False, False, True, False, False, False, False, True]
    assert sig["exit"].to_list() == [False, False, False, False, False, True, False, False]


def test_contrarian_mode_buys_fear_and_sells_when_it_has_passed() -> None:
    s = [0.0, -0.1, -0.4, -0.5, -0.2, 0.05, 0.0]
    sig = create_strategy("sentiment", {"mode": "contrarian", "entry_level": 0.3, "exit_level": 0.0}).signals(_frame(s))
    assert sig["entry"].to_list() == [False, False, True, False, False, False, False]
    assert sig["exit"].to_list() == [False, False, False, False, False, True, False]


def test_sentiment_strategy_without_sentiment_columns_is_refused_naming_them() -> None:
    from quantdag.errors import DataError

    with pytest.raises(DataError, match="sent_decayed"):
        create_strategy("sentiment").signals(_frame([0.0] * 5).drop("sent_decayed"))


@pytest.mark.parametrize("params", [{}, {"mode": "contrarian", "entry_level": 0.05}])
def test_sentiment_strategy_passes_the_lookahead_check(params: dict) -> None:
    rng = np.random.default_rng(0)
    s = np.clip(np.convolve(rng.normal(0, 0.2, 400), np.ones(5) / 5, mode="same"), -1, 1).tolist()
    report = check_lookahead(create_strategy("sentiment", params), _frame(s))
    assert report.ok, report.first.describe() if report.first else ""


def test_consensus_sentiment_filter_vetoes_longs_while_the_news_is_fearful() -> None:
    n = 300
    s = [-0.5 if 100 <= i < 200 else 0.3 for i in range(n)]
    frame = _frame(s)
    members = [{"name": "sma_cross", "params": {"fast": 5, "slow": 20}}]
    plain = create_strategy("consensus", {"members": members}).signals(frame)
    gated = create_strategy("consensus", {"members": [*members, {"name": "sentiment", "params": {"entry_level": -0.2, "exit_level": -0.3},
                                                                  "filter": True}]}).signals(frame)  # fmt: skip
    in_fear = pl.int_range(0, n).is_between(101, 199)
    assert plain.filter(in_fear)["target"].abs().sum() > 0  # the voter alone is long at times during the fear
    assert gated.filter(in_fear)["target"].abs().sum() == 0  # the filter keeps the consensus flat then
    before = pl.int_range(0, n).is_between(25, 99)
    assert gated.filter(before)["target"].to_list() == plain.filter(before)["target"].to_list()  # the gate starts open
    assert check_lookahead(create_strategy("consensus", {"members": [*members, {"name": "sentiment", "filter": True}]}), frame).ok


def test_consensus_default_members_keep_their_parameter_hash_form() -> None:
    c = create_strategy("consensus")
    assert all("filter" not in m for m in c.members)
    with pytest.raises(ConfigurationError, match="at least one member must vote"):
        create_strategy("consensus", {"members": [{"name": "sentiment", "filter": True}]})

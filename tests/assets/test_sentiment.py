"""The sentiment assets end to end in the main job: the simulator's feed over HTTP, a real DuckDB file,
and the sentiment strategy's signals computed from the candles' sentiment columns."""

from __future__ import annotations

import pytest

from quantdag.config import load_config
from quantdag.stages.signals import build_signals
from pipeline_helpers import recent_days, run_job

SENTIMENT_KEYS = {
    "raw.news": ("feed", "item_id", "revision"),
    "sentiment.items": ("feed", "item_id", "revision", "asset"),
    "sentiment.bars": ("exchange", "symbol", "timeframe", "ts"),
}


@pytest.mark.slow  # ~7 s: two days of the main job and a sentiment rerun
def test_daily_data_job_ingests_scores_and_aligns_news_idempotently(defs):
    days = recent_days(2)
    assert run_job(defs, "daily_data_job", days).success
    wh = defs.resources["warehouse"].get()
    bars = wh.query("SELECT symbol, timeframe, count(*) AS n, sum(sent_count) AS items FROM sentiment.bars GROUP BY ALL")
    got = {(r["symbol"], r["timeframe"]): (r["n"], r["items"]) for r in bars.iter_rows(named=True)}
    per_day = {"1h": 24, "4h": 6, "1d": 1}
    for m in load_config().markets:  # every configured market gets a row per candle
        assert got[(m.symbol, m.timeframe)][0] == 2 * per_day[m.timeframe], m.key
    assert got[("BTC/USDT", "1h")][1] > 0 and got[("SOL/USDT", "1h")][1] > 0
    first = {t: wh.table_hash(t, k) for t, k in SENTIMENT_KEYS.items()}
    assert run_job(defs, "sentiment_job", days).success
    assert {t: wh.table_hash(t, k) for t, k in SENTIMENT_KEYS.items()} == first

    markets = [m.on("sim") for m in load_config().research_markets]
    report = build_signals(wh, "sentiment", markets)
    assert report.lookahead is not None and report.lookahead.ok
    traded = wh.query("SELECT count(*) AS n, count(*) FILTER (entry) AS entries FROM signals.signals WHERE strategy = 'sentiment'")
    assert traded["n"][0] == 3 * 2 * 24 and traded["entries"][0] > 0

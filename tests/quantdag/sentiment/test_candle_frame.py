"""The frame strategies get (``read_candles``) and the ML join carry the sentiment columns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import polars as pl

from quantdag.markets import Market
from quantdag.stages.common import read_candles
from quantdag.store import Warehouse, load_sql

M = Market("sim", "BTC/USDT", "1h")
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _store(wh: Warehouse) -> None:
    ts = [T0 + timedelta(hours=h) for h in range(4)]
    candles = pl.DataFrame({"exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "ts": ts, "open": 1.0, "high": 1.0,
                            "low": 1.0, "close": 1.0, "volume": 1.0, "filled": False})  # fmt: skip
    bars = pl.DataFrame({"exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "ts": ts[1:3], "asset": "BTC",
                         "sent_count": [2, 0], "sent_mean": [0.5, None], "sent_dispersion": [0.1, None], "sent_decayed": [0.3, 0.2]})  # fmt: skip
    indicators = pl.DataFrame({"exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h", "ts": ts})
    with wh.transaction() as con:
        for table, frame in (("market.candles", candles), ("sentiment.bars", bars), ("features.indicators", indicators)):
            Warehouse.insert(con, table, frame.with_columns(pl.col("ts").dt.cast_time_unit("ms")))


def test_read_candles_joins_sentiment_and_fills_zero_where_nothing_was_known(tmp_path) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    _store(wh)
    frame = read_candles(wh, M)
    assert frame["ts"].is_sorted() and frame.height == 4
    assert frame["sent_count"].to_list() == [0, 2, 0, 0]
    assert frame["sent_mean"].to_list() == [0.0, 0.5, 0.0, 0.0]
    assert frame["sent_decayed"].to_list() == [0.0, 0.3, 0.2, 0.0]


def test_read_only_reader_of_a_file_without_sentiment_tables_gets_zeros(tmp_path) -> None:
    path = tmp_path / "q.duckdb"
    _store(Warehouse(path))
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE sentiment.bars")
    con.close()
    frame = read_candles(Warehouse(path, read_only=True), M)
    assert frame["sent_count"].to_list() == [0] * 4 and frame["sent_decayed"].to_list() == [0.0] * 4


def test_ml_join_gives_each_indicator_row_its_candles_sentiment(tmp_path) -> None:
    wh = Warehouse(tmp_path / "q.duckdb")
    _store(wh)
    rows = wh.query(load_sql("select_features_with_sentiment"), ["sim", "BTC/USDT", "1h"])
    assert rows["sent_count"].to_list() == [None, 2, 0, None]  # NULL: no bar built for that candle
    assert rows["sent_decayed"].to_list() == [None, 0.3, 0.2, None]

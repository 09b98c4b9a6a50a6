"""Storage failures are typed errors that name the file and say what to do (#14 item 7)."""

from __future__ import annotations

import os

import pytest

from quantdag.store import Warehouse, WarehouseCorrupt, WarehouseError


def _real(tmp_path) -> bytes:
    wh = Warehouse(tmp_path / "real.duckdb")
    wh.ensure_schema()
    return (tmp_path / "real.duckdb").read_bytes()


def test_warehouse_file_of_random_bytes_is_corrupt_naming_it_and_the_cure(tmp_path):
    path = tmp_path / "q.duckdb"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(WarehouseCorrupt, match=rf"{path}.*restore it from a backup"):
        Warehouse(path).ensure_schema()


def test_warehouse_truncated_file_is_corrupt(tmp_path):
    data = _real(tmp_path)
    path = tmp_path / "trunc.duckdb"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WarehouseCorrupt, match=str(path)):
        Warehouse(path).ensure_schema()


def test_warehouse_block_failing_its_checksum_is_corrupt_when_read(tmp_path):
    data = bytearray(_real(tmp_path))
    for i in range(20_000, 21_000):
        data[i] ^= 0xFF
    path = tmp_path / "flip.duckdb"
    path.write_bytes(bytes(data))
    with pytest.raises(WarehouseCorrupt, match=rf"{path}.*checksum"):
        Warehouse(path).query("SELECT count(*) AS n FROM market.candles")


def test_warehouse_path_that_is_a_directory_says_so(tmp_path):
    (tmp_path / "q.duckdb").mkdir()
    with pytest.raises(WarehouseError, match=r"is a directory"):
        Warehouse(tmp_path / "q.duckdb").ensure_schema()


def test_warehouse_folder_that_cannot_be_created_names_it(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(WarehouseError, match=r"afile"):
        Warehouse(tmp_path / "afile" / "q.duckdb").ensure_schema()


def test_warehouse_bad_sql_is_not_a_storage_error(tmp_path):
    import duckdb

    with pytest.raises(duckdb.Error) as err:
        Warehouse(tmp_path / "q.duckdb").query("SELECT nope FROM market.candles")
    assert not isinstance(err.value, WarehouseError)

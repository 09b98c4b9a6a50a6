"""Cutting parameter-set partitions into single-run ranges."""

import pytest

from pipelines.batches import RANGE_END, RANGE_START, contiguous_ranges, range_tags_of

ORDER = ["a", "b", "c", "d", "e"]


def test_contiguous_ranges_keep_the_partition_order_and_split_at_holes():
    assert contiguous_ranges(ORDER, ["e", "a", "b", "d"]) == [["a", "b"], ["d", "e"]]
    assert contiguous_ranges(ORDER, ORDER) == [ORDER]
    assert contiguous_ranges(ORDER, []) == []


def test_contiguous_ranges_refuse_an_unregistered_key():
    with pytest.raises(KeyError, match="zz"):
        contiguous_ranges(ORDER, ["a", "zz"])


def test_range_tags_cover_first_to_last():
    assert range_tags_of(["b", "c", "d"]) == {RANGE_START: "b", RANGE_END: "d"}

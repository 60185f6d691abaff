"""How fetched rows become chunks: column lists, groups of equal ids never split."""

from __future__ import annotations

from typing import Any

from pendo_assets.sync.source.column_chunks import column_chunks, column_frame


def _fetches(rows: list[tuple[Any, ...]], size: int) -> list[list[tuple[Any, ...]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def test_rows_come_out_as_columns_in_order() -> None:
    rows = [(f"v-{i}", i) for i in range(7)]

    chunks = list(column_chunks(_fetches(rows, 3), 2, chunk_rows=3, group=None))

    assert chunks == [
        [["v-0", "v-1", "v-2"], [0, 1, 2]],
        [["v-3", "v-4", "v-5"], [3, 4, 5]],
        [["v-6"], [6]],
    ]


def test_a_group_of_equal_ids_is_never_split_across_chunks() -> None:
    ids = ["a", "b", "b", "b", " b", "c", "c", "d"]
    rows = [(value, position) for position, value in enumerate(ids)]

    chunks = list(column_chunks(_fetches(rows, 2), 2, chunk_rows=2, group=0))

    assert [chunk[1] for chunk in chunks] == [[0], [1, 2, 3, 4], [5, 6], [7]]


def test_a_chunk_that_is_one_group_keeps_growing_until_the_group_ends() -> None:
    rows = [("same", i) for i in range(5)] + [("next", 5)]

    chunks = list(column_chunks(_fetches(rows, 2), 2, chunk_rows=2, group=0))

    assert [chunk[1] for chunk in chunks] == [[0, 1, 2, 3, 4], [5]]


def test_no_rows_make_no_chunk() -> None:
    assert list(column_chunks([], 3, chunk_rows=10, group=None)) == []


def test_a_frame_keeps_the_drivers_values_as_objects() -> None:
    frame = column_frame([["v-1", None], [None, [1, 2]]], ["id", "tags"])

    assert frame["id"].tolist() == ["v-1", None]
    assert frame["tags"].tolist() == [None, [1, 2]]
    assert frame.dtypes.tolist() == [object, object]

"""Rows no partition will ever read are counted, so they never vanish unseen.

``read_partition_counted`` returns the day's rows and one COUNT over the whole source: NULL
partition values, and for text also values not shaped like an ISO-8601 date.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, DateTime, Integer, Text

from pendo_assets.sync.source.warehouse import read_partition_counted
from pendo_assets.sync.spec import SourceSpec

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import WarehouseDb

DAY = "2026-11-03"
SOURCE = SourceSpec(partition_column="ts", table="events")


def test_null_timestamps_are_rows_without_partition(warehouse_db: WarehouseDb) -> None:
    stamps = [datetime(2026, 11, 3, 10), None, datetime(2026, 11, 5, 10), None]
    rows = [{"id": i, "ts": ts} for i, ts in enumerate(stamps, start=1)]
    warehouse_db.create("events", Column("id", Integer), Column("ts", DateTime), rows=rows)

    read = read_partition_counted(warehouse_db.engine, SOURCE, ["id"], DAY)

    assert (list(read.frame["id"]), read.rows_without_partition) == ([1], 2)


def test_null_and_non_date_text_are_rows_without_partition(warehouse_db: WarehouseDb) -> None:
    values = ["2026-11-03T10:00:00Z", None, "yesterday", "12:00", "2026-11-04T10:00:00Z"]
    rows = [{"id": i, "ts": ts} for i, ts in enumerate(values, start=1)]
    warehouse_db.create("events", Column("id", Integer), Column("ts", Text), rows=rows)

    read = read_partition_counted(warehouse_db.engine, SOURCE, ["id"], DAY)

    assert (list(read.frame["id"]), read.rows_without_partition) == ([1], 3)


def test_a_source_of_only_nulls_reads_nothing_and_counts_every_row(
    warehouse_db: WarehouseDb,
) -> None:
    rows = [{"id": 1, "ts": None}, {"id": 2, "ts": None}]
    warehouse_db.create("events", Column("id", Integer), Column("ts", DateTime), rows=rows)

    read = read_partition_counted(warehouse_db.engine, SOURCE, ["id"], DAY)

    assert (len(read.frame), read.rows_without_partition) == (0, 2)

"""Epoch partition columns in any unit, told apart by magnitude, on SQLite and PostgreSQL.

A day is one range per unit (seconds, milliseconds, microseconds, nanoseconds), so a column in
microseconds reads its rows, a column mixing units reads each row in its own unit, and rows come
back in the order of the instants they name, not of the raw numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import BigInteger, Column, Float, Integer

from pendo_assets.sync.source.warehouse import WarehouseError, changed_partitions, read_partition
from pendo_assets.sync.spec import SourceSpec

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import WarehouseDb

DAY = "2026-11-03"
SOURCE = SourceSpec(partition_column="ts", table="events")
# 2026-11-03T00:00Z, 10:00Z, 10:01Z and 2026-11-04T00:00Z as epoch seconds.
DAY_START, TEN, TEN_ONE, DAY_END = 1793664000, 1793700000, 1793700060, 1793750400
UNITS = {"seconds": 1, "milliseconds": 10**3, "microseconds": 10**6, "nanoseconds": 10**9}


def events(db: WarehouseDb, *values: Any, column_type: Any = BigInteger) -> None:
    """Table ``events(id, ts)`` with ids 1, 2, ... for ``values``."""
    rows = [{"id": i, "ts": value} for i, value in enumerate(values, start=1)]
    db.create("events", Column("id", Integer), Column("ts", column_type), rows=rows)


def test_the_seconds_used_here_are_the_instants_they_are_named_after() -> None:
    moments = [datetime.fromtimestamp(s, UTC) for s in (DAY_START, TEN, TEN_ONE, DAY_END)]

    assert moments == [
        datetime(2026, 11, 3, tzinfo=UTC),
        datetime(2026, 11, 3, 10, tzinfo=UTC),
        datetime(2026, 11, 3, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 4, tzinfo=UTC),
    ]


@pytest.mark.parametrize("unit", list(UNITS))
def test_a_column_in_any_unit_reads_the_days_rows_and_only_them(
    warehouse_db: WarehouseDb, unit: str
) -> None:
    per_second = UNITS[unit]
    events(
        warehouse_db,
        DAY_START * per_second - 1,
        DAY_START * per_second,
        TEN * per_second,
        DAY_END * per_second - 1,
        DAY_END * per_second,
    )

    frame = read_partition(warehouse_db.engine, SOURCE, ["id", "ts"], DAY)

    assert list(frame["id"]) == [2, 3, 4]


def test_a_column_mixing_seconds_and_milliseconds_is_ordered_by_instant(
    warehouse_db: WarehouseDb,
) -> None:
    # id 1 is 10:01 in seconds, id 2 is 10:00 in milliseconds: the raw numbers sort the other way.
    events(warehouse_db, TEN_ONE, TEN * 1000)

    frame = read_partition(warehouse_db.engine, SOURCE, ["id", "ts"], DAY)

    assert list(frame["id"]) == [2, 1]


def test_numbers_beyond_every_unit_are_an_error_naming_table_column_and_value(
    warehouse_db: WarehouseDb,
) -> None:
    events(warehouse_db, 1e20, column_type=Float)

    with pytest.raises(WarehouseError) as error:
        read_partition(warehouse_db.engine, SOURCE, ["id"], DAY)

    assert str(error.value) == (
        "partition column 'ts' of table 'events' holds numbers such as 1e+20, which are no "
        "epoch time in seconds, milliseconds, microseconds or nanoseconds (all below 1e20)"
    )


def test_the_change_sensor_sees_the_day_of_microsecond_rows(warehouse_db: WarehouseDb) -> None:
    events(warehouse_db, TEN * 10**6, TEN_ONE * 10**6)

    recent = changed_partitions(
        warehouse_db.engine, SOURCE, None, before=datetime(2026, 11, 4, tzinfo=UTC)
    )

    assert list(recent.fingerprints) == [DAY]
    assert recent.cursor == str(TEN_ONE * 10**6)


def test_the_cursor_of_mixed_units_is_the_latest_instant_not_the_greatest_number(
    warehouse_db: WarehouseDb,
) -> None:
    events(warehouse_db, TEN_ONE, TEN * 1000)

    recent = changed_partitions(
        warehouse_db.engine, SOURCE, None, before=datetime(2026, 11, 4, tzinfo=UTC)
    )

    assert recent.cursor == str(TEN_ONE)

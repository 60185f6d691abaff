"""DuckDB (duckdb-engine) as a warehouse: native types as partition and as mapped columns.

The table is written by one engine, closed, and read by a read-only one (DuckDB refuses a
second configuration on an open file), so these tests also show reads never write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pendo_assets.sync.source.warehouse import changed_partitions, read_partition_counted
from pendo_assets.sync.spec import SourceSpec
from pendo_assets_tests.conftest import require_duckdb


@pytest.fixture(autouse=True)
def _duckdb_installed() -> None:
    require_duckdb()


DAY = "2026-11-03"
TABLE = """
CREATE TABLE events (
    id INTEGER, at_tz TIMESTAMPTZ, on_day DATE, props JSON, key UUID, big HUGEINT,
    price DECIMAL(20, 2), tags VARCHAR[], place STRUCT(city VARCHAR, zip INTEGER)
)
"""
ROWS = """
INSERT INTO events VALUES
  (1, '2026-11-02 23:59:59+00', '2026-11-02', '{"a": 1}',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1, 1.50, ['x'], {'city': 'Oslo', 'zip': 1}),
  (2, '2026-11-03 05:00:00+05', '2026-11-03', '[1, 2]',
   'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 170141183460469231731687303715884105727, 12.34,
   ['a', 'b'], {'city': 'Rome', 'zip': 2}),
  (3, '2026-11-03 23:59:59+00', '2026-11-03', NULL, NULL, NULL, NULL, NULL, NULL),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
"""


@pytest.fixture
def duckdb_reader(tmp_path: Path) -> Iterator[Callable[[str], sa.Engine]]:
    """``make(sql)``: a DuckDB file set up by ``sql``, opened read-only."""
    engines: list[sa.Engine] = []

    def make(sql: str) -> sa.Engine:
        path = tmp_path / "warehouse.duckdb"
        writer = sa.create_engine(f"duckdb:///{path}")
        with writer.begin() as conn:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
        writer.dispose()
        reader = sa.create_engine(f"duckdb:///{path}?access_mode=read_only")
        engines.append(reader)
        return reader

    yield make
    for engine in engines:
        engine.dispose()


def read(engine: sa.Engine, column: str, columns: list[str]) -> Any:
    return read_partition_counted(
        engine, SourceSpec(partition_column=column, table="events"), columns, DAY
    )


@pytest.mark.parametrize("column", ["at_tz", "on_day"])
def test_a_timestamptz_or_date_partition_reads_the_utc_day(
    duckdb_reader: Callable[[str], sa.Engine], column: str
) -> None:
    engine = duckdb_reader(TABLE + ";" + ROWS)

    result = read(engine, column, ["id"])

    assert (list(result.frame["id"]), result.rows_without_partition) == ([2, 3], 1)


def test_native_values_come_back_as_the_driver_gives_them(
    duckdb_reader: Callable[[str], sa.Engine],
) -> None:
    engine = duckdb_reader(TABLE + ";" + ROWS)
    columns = ["props", "key", "big", "price", "tags", "place", "at_tz"]

    frame = read(engine, "at_tz", columns).frame

    assert frame.iloc[0].to_dict() == {
        "props": [1, 2],  # duckdb-engine decodes JSON
        "key": uuid.UUID("b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"),
        "big": 170141183460469231731687303715884105727,
        "price": Decimal("12.34"),
        "tags": ["a", "b"],
        "place": {"city": "Rome", "zip": 2},
        "at_tz": datetime(2026, 11, 3, 0, tzinfo=UTC),
    }


def test_the_change_sensor_reads_a_duckdb_date_column(
    duckdb_reader: Callable[[str], sa.Engine],
) -> None:
    engine = duckdb_reader(TABLE + ";" + ROWS)
    source = SourceSpec(partition_column="on_day", table="events")

    recent = changed_partitions(engine, source, None, before=datetime(2026, 11, 4, tzinfo=UTC))

    assert (sorted(recent.fingerprints), recent.cursor) == (
        ["2026-11-02", DAY],
        date(2026, 11, 3).isoformat(),
    )

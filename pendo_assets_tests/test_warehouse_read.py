"""Reading one UTC day of a source, whatever its partition column holds, on SQLite and PostgreSQL.

Tests taking ``warehouse_db`` run on both; its reader cannot write, and on PostgreSQL it runs in
New York time, so every test here also shows reads never write and days are UTC days.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, DateTime, Integer, Text

from pendo_assets.sync.source.warehouse import partition_window, read_partition
from pendo_assets.sync.spec import SourceSpec

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import WarehouseDb

DAY = "2026-11-03"
POSTGRES_ONLY = pytest.mark.parametrize(
    "warehouse_db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
SQLITE_ONLY = pytest.mark.parametrize("warehouse_db", ["sqlite"], indirect=True)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


def events(partition_column: str = "ts", table: str = "events") -> SourceSpec:
    return SourceSpec(partition_column=partition_column, table=table)


def query(sql: str, partition_column: str = "ts") -> SourceSpec:
    return SourceSpec(partition_column=partition_column, query=sql)


def rows_of(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return list(frame.itertuples(index=False, name=None))


def text_events(db: WarehouseDb, *values: str | None) -> None:
    """Table ``events(id, ts TEXT)`` with ids 1, 2, ... for ``values``."""
    rows = [{"id": i, "ts": value} for i, value in enumerate(values, start=1)]
    db.create("events", Column("id", Integer), Column("ts", Text), rows=rows)


# -- the day -----------------------------------------------------------------------------------


def test_a_partition_is_the_utc_day_its_key_names() -> None:
    assert partition_window("2026-11-03") == (at(2026, 11, 3), at(2026, 11, 4))


def test_the_last_partition_of_a_year_ends_at_the_next_new_year() -> None:
    assert partition_window("2026-12-31") == (at(2026, 12, 31), at(2027, 1, 1))


@pytest.mark.parametrize("key", ["2026-11-3", "20261103", "2026-02-30", "2026-11-03T00:00"])
def test_a_partition_key_that_is_not_a_day_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="partition key"):
        partition_window(key)


# -- real timestamps ---------------------------------------------------------------------------


@POSTGRES_ONLY
def test_timestamptz_rows_fall_in_their_utc_day_whatever_the_session_time_zone(
    warehouse_db: WarehouseDb,
) -> None:
    stamps = [
        at(2026, 11, 2, 23, 59, 59),
        at(2026, 11, 3, 0, 0, 0),
        at(2026, 11, 3, 2, 0, 0),  # still Nov 2 in New York
        at(2026, 11, 3, 23, 59, 59),
        at(2026, 11, 4, 0, 0, 0),
        at(2026, 11, 4, 3, 0, 0),  # still Nov 3 in New York
    ]
    warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", DateTime(timezone=True)),
        rows=[{"id": i, "ts": ts} for i, ts in enumerate(stamps, start=1)],
    )

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [
        (2, at(2026, 11, 3, 0, 0, 0)),
        (3, at(2026, 11, 3, 2, 0, 0)),
        (4, at(2026, 11, 3, 23, 59, 59)),
    ]


def test_naive_timestamps_are_read_as_utc(warehouse_db: WarehouseDb) -> None:
    stamps = [
        datetime(2026, 11, 2, 23, 59, 59),
        datetime(2026, 11, 3, 0, 0, 0),
        datetime(2026, 11, 3, 23, 59, 59),
        datetime(2026, 11, 4, 0, 0, 0),
    ]
    warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", DateTime()),
        rows=[{"id": i, "ts": ts} for i, ts in enumerate(stamps, start=1)],
    )

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    # As the driver returns them: PostgreSQL gives datetimes, SQLite the text it stored.
    expected = {
        "postgres": [(2, stamps[1]), (3, stamps[2])],
        "sqlite": [(2, "2026-11-03 00:00:00.000000"), (3, "2026-11-03 23:59:59.000000")],
    }
    assert rows_of(frame) == expected[warehouse_db.backend]


@SQLITE_ONLY
def test_sqlite_timestamps_written_by_pandas_are_read(warehouse_db: WarehouseDb) -> None:
    written = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "ts": pd.to_datetime(
                [
                    "2026-11-02 23:59:59.999",
                    "2026-11-03 00:00:00",
                    "2026-11-03 23:59:59.5",
                    "2026-11-04 00:00:00",
                ],
                format="ISO8601",
            ),
        }
    )
    written.to_sql("events", warehouse_db.writer, index=False)

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [
        (2, "2026-11-03 00:00:00.000000"),
        (3, "2026-11-03 23:59:59.500000"),
    ]


# -- ISO-8601 text -----------------------------------------------------------------------------


def test_iso_text_in_utc_splits_days_at_midnight_utc(warehouse_db: WarehouseDb) -> None:
    text_events(
        warehouse_db,
        "2026-11-02T23:59:59Z",
        "2026-11-03T00:00:00Z",
        "2026-11-03T23:59:59.999999Z",
        "2026-11-04T00:00:00Z",
        "2026-11-03T12:00:00",  # no offset: UTC
    )

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [
        (2, "2026-11-03T00:00:00Z"),
        (5, "2026-11-03T12:00:00"),
        (3, "2026-11-03T23:59:59.999999Z"),
    ]


def test_iso_text_with_an_offset_lands_on_its_utc_day(warehouse_db: WarehouseDb) -> None:
    text_events(
        warehouse_db,
        "2026-11-04T03:00:00+05:00",  # 2026-11-03T22:00Z: in
        "2026-11-03T03:00:00+05:00",  # 2026-11-02T22:00Z: out
        "2026-11-03T22:00:00-05:00",  # 2026-11-04T03:00Z: out
        "2026-11-02T22:00:00-05:00",  # 2026-11-03T03:00Z: in
    )

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [(4, "2026-11-02T22:00:00-05:00"), (1, "2026-11-04T03:00:00+05:00")]


def test_iso_text_with_a_space_separator_is_read(warehouse_db: WarehouseDb) -> None:
    text_events(
        warehouse_db, "2026-11-03 08:30:00", "2026-11-03 23:59:59+00:00", "2026-11-04 00:00:00"
    )

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [(1, "2026-11-03 08:30:00"), (2, "2026-11-03 23:59:59+00:00")]


def test_text_that_is_not_a_timestamp_falls_in_no_partition(warehouse_db: WarehouseDb) -> None:
    text_events(warehouse_db, "2026-11-03 soon", "2026-11-03T10:00:00Z", "2026-11-03T25:00:00Z")

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [(2, "2026-11-03T10:00:00Z")]


def test_text_rows_are_ordered_by_their_instant_not_their_text(warehouse_db: WarehouseDb) -> None:
    text_events(
        warehouse_db,
        "2026-11-03T10:00:00+05:00",  # 05:00Z
        "2026-11-03T04:00:00Z",  # 04:00Z
        "2026-11-03T01:00:00-05:00",  # 06:00Z
    )

    frame = read_partition(warehouse_db.engine, events(), ["id"], DAY)

    assert frame["id"].tolist() == [2, 1, 3]


# -- epoch numbers -----------------------------------------------------------------------------


def test_epoch_milliseconds_split_days_at_midnight_utc(warehouse_db: WarehouseDb) -> None:
    millis = [
        epoch_ms(at(2026, 11, 3)) - 1,
        epoch_ms(at(2026, 11, 3)),
        epoch_ms(at(2026, 11, 4)) - 1,
        epoch_ms(at(2026, 11, 4)),
    ]
    warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", BigInteger),
        rows=[{"id": i, "ts": ms} for i, ms in enumerate(millis, start=1)],
    )

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [(2, 1793664000000), (3, 1793750399999)]


def test_epoch_seconds_split_days_at_midnight_utc(warehouse_db: WarehouseDb) -> None:
    seconds = [1793663999, 1793664000, 1793750399, 1793750400]  # around Nov 3 and Nov 4, 00:00Z
    warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", BigInteger),
        rows=[{"id": i, "ts": s} for i, s in enumerate(seconds, start=1)],
    )

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [(2, 1793664000), (3, 1793750399)]


# -- what comes back ---------------------------------------------------------------------------


def people(db: WarehouseDb) -> None:
    """Table ``people(id, name, secret, score, ts)``: three rows on DAY, one the day before."""
    db.create(
        "people",
        Column("id", Integer),
        Column("name", Text),
        Column("secret", Text),
        Column("score", Integer, nullable=True),
        Column("ts", BigInteger),
        rows=[
            {"id": 1, "name": "ann", "secret": "s1", "score": 5, "ts": 1793700000000},
            {"id": 2, "name": "bob", "secret": "s2", "score": None, "ts": 1793670000000},
            {"id": 3, "name": "cy", "secret": "s3", "score": 7, "ts": 1793740000000},
            {"id": 4, "name": "dee", "secret": "s4", "score": 1, "ts": 1793600000000},
        ],
    )


def test_only_the_requested_columns_come_back_in_the_requested_order(
    warehouse_db: WarehouseDb,
) -> None:
    people(warehouse_db)

    frame = read_partition(warehouse_db.engine, events(table="people"), ["name", "ts", "id"], DAY)

    assert list(frame.columns) == ["name", "ts", "id"]


def test_the_warehouse_is_asked_only_for_the_requested_columns(
    warehouse_db: WarehouseDb,
) -> None:
    people(warehouse_db)
    statements: list[str] = []
    sa.event.listen(
        warehouse_db.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )

    read_partition(warehouse_db.engine, events(table="people"), ["id", "ts"], DAY)

    assert statements
    assert not [s for s in statements if "secret" in s or "*" in s]


def test_rows_are_ordered_by_the_partition_column_with_a_fresh_index(
    warehouse_db: WarehouseDb,
) -> None:
    people(warehouse_db)

    frame = read_partition(warehouse_db.engine, events(table="people"), ["id", "ts"], DAY)

    assert rows_of(frame) == [(2, 1793670000000), (1, 1793700000000), (3, 1793740000000)]
    pd.testing.assert_index_equal(frame.index, pd.RangeIndex(3))


def test_values_come_back_as_the_driver_returns_them(warehouse_db: WarehouseDb) -> None:
    people(warehouse_db)

    frame = read_partition(warehouse_db.engine, events(table="people"), ["id", "score"], DAY)

    # No NaN for NULL and no float for a nullable integer column.
    assert frame["score"].tolist() == [None, 5, 7]
    assert [type(value) for value in frame["score"]] == [type(None), int, int]


def test_a_day_without_rows_is_an_empty_frame_with_the_requested_columns(
    warehouse_db: WarehouseDb,
) -> None:
    people(warehouse_db)

    frame = read_partition(warehouse_db.engine, events(table="people"), ["id", "ts"], "2026-12-25")

    assert list(frame.columns) == ["id", "ts"]
    assert frame.empty


def test_an_empty_table_reads_as_an_empty_frame(warehouse_db: WarehouseDb) -> None:
    text_events(warehouse_db)

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert list(frame.columns) == ["id", "ts"]
    assert frame.empty


def test_rows_without_a_partition_value_fall_in_no_partition(warehouse_db: WarehouseDb) -> None:
    text_events(warehouse_db, None, "2026-11-03T10:00:00Z", None)

    frame = read_partition(warehouse_db.engine, events(), ["id", "ts"], DAY)

    assert rows_of(frame) == [(2, "2026-11-03T10:00:00Z")]


# -- sources -----------------------------------------------------------------------------------


def shop(db: WarehouseDb) -> None:
    """Tables ``users(id, plan)`` and ``orders(id, user_id, kind, ts)`` with text timestamps."""
    db.create(
        "users",
        Column("id", Integer),
        Column("plan", Text),
        rows=[{"id": 1, "plan": "pro"}, {"id": 2, "plan": "free"}],
    )
    db.create(
        "orders",
        Column("id", Integer),
        Column("user_id", Integer),
        Column("kind", Text),
        Column("ts", Text),
        rows=[
            {"id": 10, "user_id": 1, "kind": "new", "ts": "2026-11-03T09:00:00Z"},
            {"id": 11, "user_id": 2, "kind": "new", "ts": "2026-11-03T10:00:00Z"},
            {"id": 12, "user_id": 1, "kind": "refund", "ts": "2026-11-03T11:00:00Z"},
            {"id": 13, "user_id": 1, "kind": "new", "ts": "2026-11-04T09:00:00Z"},
        ],
    )


def test_a_query_source_with_a_join_and_a_where_is_read(warehouse_db: WarehouseDb) -> None:
    shop(warehouse_db)
    source = query(
        "SELECT o.id, o.ts, u.plan FROM orders o JOIN users u ON u.id = o.user_id "
        "WHERE u.plan <> 'free'"
    )

    frame = read_partition(warehouse_db.engine, source, ["id", "plan", "ts"], DAY)

    assert rows_of(frame) == [
        (10, "pro", "2026-11-03T09:00:00Z"),
        (12, "pro", "2026-11-03T11:00:00Z"),
    ]


def test_a_query_source_with_a_cte_is_read(warehouse_db: WarehouseDb) -> None:
    shop(warehouse_db)
    source = query(
        "WITH sales AS (SELECT id, ts FROM orders WHERE kind = 'new') SELECT id, ts FROM sales"
    )

    frame = read_partition(warehouse_db.engine, source, ["id", "ts"], DAY)

    assert rows_of(frame) == [(10, "2026-11-03T09:00:00Z"), (11, "2026-11-03T10:00:00Z")]


def test_query_text_reaches_the_warehouse_verbatim(warehouse_db: WarehouseDb) -> None:
    shop(warehouse_db)
    # A colon that looks like a bind parameter, a percent sign, a trailing line comment.
    source = query(
        "SELECT id, ts, 'at :noon' AS note FROM orders\n"
        "WHERE kind LIKE 'ref%' AND kind <> 'x :y' -- refunds only"
    )

    frame = read_partition(warehouse_db.engine, source, ["id", "note"], DAY)

    assert rows_of(frame) == [(12, "at :noon")]


def test_a_query_source_may_end_with_a_semicolon(warehouse_db: WarehouseDb) -> None:
    shop(warehouse_db)

    frame = read_partition(
        warehouse_db.engine, query("SELECT id, ts FROM orders WHERE user_id = 2;\n"), ["id"], DAY
    )

    assert frame["id"].tolist() == [11]


def test_odd_table_and_column_names_are_quoted(warehouse_db: WarehouseDb) -> None:
    warehouse_db.create(
        "Order Items",
        Column("order", Integer),
        Column("Qty", Integer),
        Column("Updated At", Text),
        rows=[
            {"order": 1, "Qty": 3, "Updated At": "2026-11-03T08:00:00Z"},
            {"order": 2, "Qty": 4, "Updated At": "2026-11-02T08:00:00Z"},
        ],
    )
    source = SourceSpec(partition_column="Updated At", table="Order Items")

    frame = read_partition(warehouse_db.engine, source, ["order", "Qty", "Updated At"], DAY)

    assert list(frame.columns) == ["order", "Qty", "Updated At"]
    assert rows_of(frame) == [(1, 3, "2026-11-03T08:00:00Z")]


@pytest.mark.postgres
def test_a_schema_qualified_table_is_read_from_its_schema(
    postgres_url: str, pg_schema: str
) -> None:
    engine = sa.create_engine(postgres_url)  # search_path does not include the schema
    table = sa.Table(
        "Order Items", sa.MetaData(), Column("id", Integer), Column("ts", Text), schema=pg_schema
    )
    try:
        table.create(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": 1, "ts": "2026-11-03T08:00:00Z"}])
        source = SourceSpec(partition_column="ts", table=f"{pg_schema}.Order Items")

        frame = read_partition(engine, source, ["id", "ts"], DAY)
    finally:
        engine.dispose()

    assert rows_of(frame) == [(1, "2026-11-03T08:00:00Z")]


def test_a_read_only_sqlite_file_is_read(sqlite_url: str) -> None:
    writer = sa.create_engine(sqlite_url)
    table = sa.Table("events", sa.MetaData(), Column("id", Integer), Column("ts", Text))
    table.create(writer)
    with writer.begin() as conn:
        conn.execute(table.insert(), [{"id": 1, "ts": "2026-11-03T08:00:00Z"}])
    writer.dispose()
    reader = sa.create_engine(f"sqlite:///file:{sa.make_url(sqlite_url).database}?mode=ro&uri=true")

    try:
        frame = read_partition(reader, events(), ["id", "ts"], DAY)
    finally:
        reader.dispose()

    assert rows_of(frame) == [(1, "2026-11-03T08:00:00Z")]


# -- counting ----------------------------------------------------------------------------------

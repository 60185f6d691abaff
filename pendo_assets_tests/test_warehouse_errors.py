"""What goes wrong reading a warehouse is a ``WarehouseError`` a person can act on.

It names the table or query and the column, lists what exists when it can, never shows a
password, and no read ever writes.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, Text

from pendo_assets.sync.source.warehouse import (
    WarehouseError,
    changed_partitions,
    read_partition,
)
from pendo_assets.sync.spec import SourceSpec

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import WarehouseDb

DAY = "2026-11-03"
MADE_UP_PASSWORD = "Xq7-made-up-pw-91"
POSTGRES_ONLY = pytest.mark.parametrize(
    "warehouse_db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

# Every entry point, called the way its caller would: (engine, source) -> anything.
READS: dict[str, Callable[[sa.Engine, SourceSpec], Any]] = {
    "read_partition": lambda engine, source: read_partition(engine, source, ["id", "ts"], DAY),
    "changed_partitions": lambda engine, source: changed_partitions(engine, source, None),
}
EVERY_READ = pytest.mark.parametrize("read", list(READS.values()), ids=list(READS))


def events(db: WarehouseDb, column_type: Any = BigInteger, *values: Any) -> None:
    """Table ``events(id, ts)`` with ``ts`` of ``column_type`` holding ``values``."""
    rows = [{"id": i, "ts": value} for i, value in enumerate(values, start=1)]
    db.create("events", Column("id", Integer), Column("ts", column_type), rows=rows)


def error_of(call: Callable[[], Any]) -> str:
    with pytest.raises(WarehouseError) as raised:
        call()
    return str(raised.value)


@EVERY_READ
def test_a_missing_table_is_named_with_the_tables_that_exist(
    warehouse_db: WarehouseDb, read: Callable[..., Any]
) -> None:
    events(warehouse_db)
    source = SourceSpec(partition_column="ts", table="evnts")

    message = error_of(lambda: read(warehouse_db.engine, source))

    assert message.startswith("table 'evnts' not found in the warehouse ")
    assert message.endswith("; tables there: events")


def test_a_missing_column_is_named_with_the_columns_that_exist(
    warehouse_db: WarehouseDb,
) -> None:
    events(warehouse_db)
    source = SourceSpec(partition_column="ts", table="events")

    message = error_of(
        lambda: read_partition(warehouse_db.engine, source, ["id", "plan", "ts"], DAY)
    )

    assert message == "table 'events' has no column 'plan'; its columns are: id, ts"


@EVERY_READ
def test_a_missing_partition_column_is_named_as_the_partition_column(
    warehouse_db: WarehouseDb, read: Callable[..., Any]
) -> None:
    events(warehouse_db)
    source = SourceSpec(partition_column="updated_at", table="events")

    message = error_of(lambda: read(warehouse_db.engine, source))

    assert message.startswith("table 'events' has no ")
    assert "partition column 'updated_at'; its columns are: id, ts" in message


def test_a_missing_column_of_a_query_source_is_named_with_the_querys_columns(
    warehouse_db: WarehouseDb,
) -> None:
    events(warehouse_db)
    source = SourceSpec(partition_column="ts", query="SELECT id, ts FROM events")

    message = error_of(lambda: read_partition(warehouse_db.engine, source, ["id", "plan"], DAY))

    assert (
        message == "query 'SELECT id, ts FROM events' has no column 'plan'; its columns are: id, ts"
    )


def test_a_failing_query_source_reports_the_warehouses_reason(warehouse_db: WarehouseDb) -> None:
    source = SourceSpec(partition_column="ts", query="SELECT id, ts FROM nowhere")

    message = error_of(lambda: read_partition(warehouse_db.engine, source, ["id", "ts"], DAY))

    assert message.startswith(
        "cannot read query 'SELECT id, ts FROM nowhere' (partition column 'ts') from "
    )
    reason = {"sqlite": "no such table: nowhere", "postgres": 'relation "nowhere" does not exist'}
    assert message.endswith(reason[warehouse_db.backend])


@EVERY_READ
def test_a_partition_column_of_another_type_is_refused(
    warehouse_db: WarehouseDb, read: Callable[..., Any]
) -> None:
    events(warehouse_db, LargeBinary, b"\x00\x01")
    source = SourceSpec(partition_column="ts", table="events")

    message = error_of(lambda: read(warehouse_db.engine, source))

    assert message == (
        "partition column 'ts' of table 'events' holds bytes values such as b'\\x00\\x01'; "
        "expected timestamps, dates, ISO-8601 text or epoch numbers"
    )


@EVERY_READ
def test_a_text_partition_column_without_timestamps_is_refused(
    warehouse_db: WarehouseDb, read: Callable[..., Any]
) -> None:
    events(warehouse_db, Text, "soon", "later")
    source = SourceSpec(partition_column="ts", table="events")

    message = error_of(lambda: read(warehouse_db.engine, source))

    assert message.startswith("partition column 'ts' of table 'events' holds text that is not")
    assert "ISO-8601 timestamp, such as " in message


def test_a_cursor_that_does_not_fit_the_column_is_refused(warehouse_db: WarehouseDb) -> None:
    events(warehouse_db, BigInteger, 1793700000000)
    source = SourceSpec(partition_column="ts", table="events")

    message = error_of(
        lambda: changed_partitions(warehouse_db.engine, source, "2026-11-03T00:00:00Z")
    )

    assert message.startswith(
        "cursor '2026-11-03T00:00:00Z' is not an epoch number "
        "(partition column 'ts' of table 'events' holds epoch numbers"
    )


# -- credentials and writes --------------------------------------------------------------------


@pytest.mark.postgres
def test_a_failed_connection_names_the_warehouse_without_its_password(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(username="no_such_user_91", password=MADE_UP_PASSWORD)
    engine = sa.create_engine(url)
    source = SourceSpec(partition_column="ts", table="events")

    with pytest.raises(WarehouseError) as raised:
        read_partition(engine, source, ["id", "ts"], DAY)

    message = str(raised.value)
    assert message.startswith(
        "cannot connect to the warehouse postgresql+psycopg://no_such_user_91:***@127.0.0.1:5432/"
        "test to read table 'events': "
    )
    assert 'role "no_such_user_91" does not exist' in message
    assert MADE_UP_PASSWORD not in "".join(traceback.format_exception(raised.value))


@pytest.mark.postgres
def test_a_missing_table_names_the_warehouse_without_its_password(
    postgres_url: str, pg_schema: str
) -> None:
    # Trust authentication ignores the password, so this connects and then finds no table.
    engine = sa.create_engine(sa.make_url(postgres_url).set(password=MADE_UP_PASSWORD))
    source = SourceSpec(partition_column="ts", table=f"{pg_schema}.events")

    with pytest.raises(WarehouseError) as raised:
        changed_partitions(engine, source, None)
    engine.dispose()

    assert ":***@127.0.0.1:5432/test" in str(raised.value)
    assert MADE_UP_PASSWORD not in "".join(traceback.format_exception(raised.value))


@POSTGRES_ONLY
def test_a_query_source_that_would_write_is_refused_and_writes_nothing(
    warehouse_db: WarehouseDb, postgres_url: str
) -> None:
    events(warehouse_db, BigInteger, 1793700000000)
    warehouse_db.execute(
        "CREATE TABLE audit (n int);"
        "CREATE FUNCTION note_read() RETURNS int LANGUAGE sql VOLATILE"
        " AS 'INSERT INTO audit VALUES (1) RETURNING 1'"
    )
    # An engine that could write (the fixture's reader is read-only by its own settings).
    engine = sa.create_engine(
        postgres_url, connect_args={"options": f"-c search_path={warehouse_db.schema}"}
    )
    source = SourceSpec(
        partition_column="ts", query="SELECT id, ts FROM events WHERE note_read() = 1"
    )

    try:
        message = error_of(lambda: read_partition(engine, source, ["id", "ts"], DAY))
    finally:
        engine.dispose()

    assert message.endswith("cannot execute INSERT in a read-only transaction")
    with warehouse_db.writer.connect() as conn:
        written = conn.execute(sa.text(f"SELECT count(*) FROM {warehouse_db.schema}.audit"))
        assert written.scalar_one() == 0

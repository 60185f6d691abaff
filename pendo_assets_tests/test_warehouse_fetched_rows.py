"""PostgreSQL partitions are read on the driver's own server-side cursor: the values must be
exactly those SQLAlchemy would have handed over, and a failure mid-read a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pendo_assets.sync.source.fetched_rows import fetch_batches
from pendo_assets.sync.source.warehouse import WarehouseError, read_partition
from pendo_assets.sync.spec import SourceSpec

pytestmark = pytest.mark.postgres

COLUMNS = ("id", "amount", "doc", "tags", "uid", "raw", "seen_at", "ratio", "big", "flag")


@pytest.fixture(params=["psycopg", "psycopg2"])
def engine(
    request: pytest.FixtureRequest, postgres_url: str, pg_schema: str
) -> Iterator[sa.Engine]:
    """Native PostgreSQL types, NULLs included, in a table of the test's own schema; read
    through either driver whose server-side cursors are taken directly."""
    url = sa.make_url(postgres_url).set(drivername=f"postgresql+{request.param}")
    engine = sa.create_engine(url, connect_args={"options": f"-c search_path={pg_schema}"})
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE typed (id text, amount numeric(12, 2), doc jsonb, tags text[], "
            "uid uuid, raw bytea, seen_at timestamptz, ratio float8, big bigint, flag boolean)"
        )
        connection.exec_driver_sql(
            "INSERT INTO typed VALUES "
            "('v-1', 12.50, '{\"a\": [1, 2]}', ARRAY['x', 'y'], "
            "'6f1c2b7e-0000-4000-8000-000000000001', '\\x00ff', '2026-11-02 10:00+00', "
            "0.25, 9007199254740993, true), "
            "('v-2', NULL, NULL, NULL, NULL, NULL, '2026-11-02 11:00+00', NULL, NULL, NULL), "
            "(' v-3 ', -1, '\"text\"', '{}', NULL, '', '2026-11-02 12:00+00', 'NaN', -1, false)"
        )
    yield engine
    engine.dispose()


def _comparable(row: tuple[Any, ...]) -> list[tuple[type, Any]]:
    """Each value with its type; buffers as bytes and NaN as text, so equal means equal."""
    return [
        (type(value), bytes(value) if isinstance(value, memoryview) else repr(value))
        for value in row
    ]


def _statement() -> sa.Select[Any]:
    table = sa.table("typed", *(sa.column(name) for name in COLUMNS))
    return sa.select(*table.c).order_by(table.c.seen_at)


def test_rows_are_exactly_what_sqlalchemy_gives(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(_statement())]
    with engine.connect() as connection:
        batches = list(fetch_batches(connection, _statement(), 2))

    assert [len(batch) for batch in batches] == [2, 1]
    got = [row for batch in batches for row in batch]
    assert [_comparable(row) for row in got] == [_comparable(row) for row in expected]


def test_a_failure_during_the_fetch_is_a_sqlalchemy_error(engine: sa.Engine) -> None:
    table = sa.table("typed", sa.column("big"))
    statement = sa.select((sa.literal(1) / (table.c.big + 1)).label("x"))

    with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as raised:
        list(fetch_batches(connection, statement, 10))

    assert "division by zero" in str(raised.value)


def test_a_query_source_failing_mid_read_names_the_source_and_the_reason(
    engine: sa.Engine,
) -> None:
    source = SourceSpec(
        partition_column="seen_at",
        query="SELECT id, seen_at, 1 / (big + 1) AS broken FROM typed",
    )

    with pytest.raises(WarehouseError) as raised:
        read_partition(engine, source, ["id", "broken"], "2026-11-02")

    assert "division by zero" in str(raised.value)
    assert "query" in str(raised.value)

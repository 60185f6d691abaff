"""What a partition read costs the warehouse: the statements it sends (PostgreSQL), and the
declared `partition_kind` that spares the probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from pendo_assets.sync.source.warehouse import read_partition
from pendo_assets.sync.spec import SourceSpec, SyncConfigError, parse_syncs

pytestmark = pytest.mark.postgres


@pytest.fixture
def warehouse(postgres_url: str, pg_schema: str) -> Iterator[tuple[sa.Engine, list[str]]]:
    """A PostgreSQL warehouse with one visitor on 2026-11-02, and the SELECTs its driver is
    given once set up (server-side cursors included: partitions are read on one)."""
    statements: list[str] = []
    recording = False

    def note(query: Any) -> None:
        text = " ".join(str(query).split())
        if recording and text.upper().startswith("SELECT"):
            statements.append(text)

    class Cursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            note(query)
            return super().execute(query, params, **options)

    class ServerCursor(psycopg.ServerCursor[Any]):
        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            note(query)
            return super().execute(query, params, **options)

    url = sa.make_url(postgres_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def connect() -> psycopg.Connection[Any]:
        connection = psycopg.connect(conninfo, options=f"-c search_path={pg_schema}")
        connection.cursor_factory = Cursor
        connection.server_cursor_factory = ServerCursor
        return connection

    engine = sa.create_engine("postgresql+psycopg://", creator=connect)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE visitors (id text, updated_at timestamptz)")
        connection.exec_driver_sql(
            "INSERT INTO visitors VALUES ('v-1', '2026-11-02 10:00+00'), ('v-2', NULL)"
        )
    recording = True
    yield engine, statements
    engine.dispose()


def test_a_read_is_one_probe_of_the_partition_column_and_one_query(
    warehouse: tuple[sa.Engine, list[str]],
) -> None:
    engine, statements = warehouse
    source = SourceSpec(partition_column="updated_at", table="visitors")

    frame = read_partition(engine, source, ["id"], "2026-11-02")

    assert frame["id"].tolist() == ["v-1"]
    probe, read = statements[-2:]
    assert probe.startswith("SELECT visitors.updated_at FROM visitors WHERE")
    assert "LIMIT" in probe
    # Ordered and cut exactly in SQL: the partition column is not fetched again.
    assert read.startswith("SELECT visitors.id FROM visitors WHERE")
    assert "ORDER BY visitors.updated_at" in read
    assert not any("pg_catalog" in s or "information_schema" in s for s in statements)


def test_a_declared_partition_kind_reads_with_one_query_and_no_probe(
    warehouse: tuple[sa.Engine, list[str]],
) -> None:
    engine, statements = warehouse
    source = SourceSpec(
        partition_column="updated_at", table="visitors", partition_kind="timestamptz"
    )

    frame = read_partition(engine, source, ["id"], "2026-11-02")

    assert frame["id"].tolist() == ["v-1"]
    reads = [s for s in statements if "FROM visitors" in s]
    assert len(reads) == 1
    assert "LIMIT" not in reads[0]


def test_an_unknown_partition_kind_fails_loading_naming_the_sync() -> None:
    with pytest.raises(SyncConfigError) as raised:
        parse_syncs(
            {
                "start_date": "2026-11-01",
                "syncs": [
                    {
                        "name": "visitors",
                        "object_type": "visitor_metadata",
                        "source": {
                            "table": "visitors",
                            "partition_column": "updated_at",
                            "partition_kind": "datetime",
                        },
                        "mapping": {"id": "visitorId", "plan": "plan"},
                    }
                ],
            }
        )
    assert "sync 'visitors'" in str(raised.value)
    assert "partition_kind 'datetime' is not one of timestamptz, timestamp, date" in str(
        raised.value
    )

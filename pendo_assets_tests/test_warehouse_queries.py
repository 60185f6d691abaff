"""What a partition read costs the warehouse: the statements it sends (PostgreSQL), and the
declared `partition_kind` that spares the probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pendo_assets.sync.source.warehouse import read_partition
from pendo_assets.sync.spec import SourceSpec, SyncConfigError, parse_syncs

pytestmark = pytest.mark.postgres


@pytest.fixture
def warehouse(postgres_url: str, pg_schema: str) -> Iterator[tuple[sa.Engine, list[str]]]:
    """A PostgreSQL warehouse with one visitor on 2026-11-02, and the statements it receives."""
    engine = sa.create_engine(postgres_url, connect_args={"options": f"-c search_path={pg_schema}"})
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE visitors (id text, updated_at timestamptz)")
        connection.exec_driver_sql(
            "INSERT INTO visitors VALUES ('v-1', '2026-11-02 10:00+00'), ('v-2', NULL)"
        )
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(" ".join(statement.split()))

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
    assert read.startswith("SELECT visitors.id, visitors.updated_at FROM visitors WHERE")
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

"""``changed_partitions``: which UTC days hold rows beyond a sensor's cursor, and the next cursor.

Each behaviour runs for every kind of partition column, on SQLite and on PostgreSQL (whose
reader is in New York time, so the days listed must be UTC days).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, DateTime, Integer, Text

from pendo_assets.sync.spec import SourceSpec
from pendo_assets.sync.warehouse import changed_partitions

if TYPE_CHECKING:
    from pendo_assets_tests.conftest import WarehouseDb

EVENTS = SourceSpec(partition_column="ts", table="events")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@dataclass(frozen=True)
class Kind:
    """A kind of partition column: its SQL type and how an instant is stored in it."""

    name: str
    column_type: Any
    store: Callable[[datetime], Any]
    postgres_only: bool = False

    def cursor(self, backend: str, moment: datetime) -> str:
        """The cursor ``changed_partitions`` should hand back for ``moment``."""
        if self.name.startswith("epoch"):
            return str(self.store(moment))
        if self.name == "naive-timestamp" and backend == "postgres":
            return moment.replace(tzinfo=None).isoformat()
        return moment.isoformat()  # aware timestamps and text (SQLite keeps timestamps as text)


KINDS = [
    Kind("timestamptz", DateTime(timezone=True), lambda t: t, postgres_only=True),
    Kind("naive-timestamp", DateTime(), lambda t: t.replace(tzinfo=None)),
    Kind("iso-text", Text, lambda t: t.isoformat().replace("+00:00", "Z")),
    Kind("epoch-ms", BigInteger, lambda t: int(t.timestamp()) * 1000),
    Kind("epoch-seconds", BigInteger, lambda t: int(t.timestamp())),
]


EVERY_KIND = pytest.mark.parametrize(
    ("warehouse_db", "kind"),
    [
        pytest.param(
            backend,
            kind,
            id=f"{backend}-{kind.name}",
            marks=[pytest.mark.postgres] if backend == "postgres" else [],
        )
        for backend in ("sqlite", "postgres")
        for kind in KINDS
        if backend == "postgres" or not kind.postgres_only
    ],
    indirect=["warehouse_db"],
)


def events_at(db: WarehouseDb, kind: Kind, *moments: datetime) -> sa.Table:
    rows = [{"id": i, "ts": kind.store(moment)} for i, moment in enumerate(moments, start=1)]
    return db.create("events", Column("id", Integer), Column("ts", kind.column_type), rows=rows)


def add(db: WarehouseDb, table: sa.Table, kind: Kind, *moments: datetime) -> None:
    db.insert(table, [{"id": 100 + i, "ts": kind.store(m)} for i, m in enumerate(moments)])


FIRST_ROWS = (
    at(2026, 11, 5, 12, 0),
    at(2026, 11, 1, 10, 0),
    at(2026, 11, 3, 0, 0),  # 19:00 on Nov 2 in New York
    at(2026, 11, 3, 23, 59, 59),
)


@EVERY_KIND
def test_without_a_cursor_every_day_with_rows_is_listed(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    events_at(warehouse_db, kind, *FIRST_ROWS)

    days, _ = changed_partitions(warehouse_db.engine, EVENTS, None)

    assert days == ["2026-11-01", "2026-11-03", "2026-11-05"]


@EVERY_KIND
def test_the_cursor_is_the_greatest_value_written_for_its_kind(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    events_at(warehouse_db, kind, *FIRST_ROWS)

    _, cursor = changed_partitions(warehouse_db.engine, EVENTS, None)

    assert cursor == kind.cursor(warehouse_db.backend, at(2026, 11, 5, 12, 0))


@EVERY_KIND
def test_with_the_cursor_only_the_days_of_newer_rows_are_listed(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    table = events_at(warehouse_db, kind, *FIRST_ROWS)
    _, cursor = changed_partitions(warehouse_db.engine, EVENTS, None)
    add(
        warehouse_db,
        table,
        kind,
        at(2026, 11, 7, 9, 0),
        at(2026, 11, 5, 18, 0),  # later on the cursor's own day
        at(2026, 10, 30, 8, 0),  # arrives late, but is older than the cursor
    )

    days, new_cursor = changed_partitions(warehouse_db.engine, EVENTS, cursor)

    assert days == ["2026-11-05", "2026-11-07"]
    assert new_cursor == kind.cursor(warehouse_db.backend, at(2026, 11, 7, 9, 0))


@EVERY_KIND
def test_without_newer_rows_nothing_is_listed_and_the_cursor_stays(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    events_at(warehouse_db, kind, *FIRST_ROWS)
    _, cursor = changed_partitions(warehouse_db.engine, EVENTS, None)

    assert changed_partitions(warehouse_db.engine, EVENTS, cursor) == ([], cursor)


@EVERY_KIND
def test_an_empty_source_lists_no_days_and_no_cursor(warehouse_db: WarehouseDb, kind: Kind) -> None:
    events_at(warehouse_db, kind)

    assert changed_partitions(warehouse_db.engine, EVENTS, None) == ([], None)


def test_only_the_partition_column_beyond_the_cursor_is_fetched(
    warehouse_db: WarehouseDb,
) -> None:
    kind = KINDS[3]  # epoch-ms
    table = events_at(warehouse_db, kind, *FIRST_ROWS)
    _, cursor = changed_partitions(warehouse_db.engine, EVENTS, None)
    add(warehouse_db, table, kind, at(2026, 11, 7, 9, 0))
    statements: list[tuple[str, Any]] = []
    sa.event.listen(
        warehouse_db.engine,
        "before_cursor_execute",
        lambda conn, cur, statement, parameters, *rest: statements.append((statement, parameters)),
    )

    changed_partitions(warehouse_db.engine, EVENTS, cursor)

    fetch, parameters = statements[-1]
    selected, _, condition = fetch.partition("FROM")
    assert selected.split() == ["SELECT", "events.ts"]
    assert "events.ts >" in condition
    assert kind.store(at(2026, 11, 5, 12, 0)) in (
        parameters.values() if isinstance(parameters, dict) else parameters
    )


def test_text_cursors_compare_instants_not_strings(warehouse_db: WarehouseDb) -> None:
    table = warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", Text),
        rows=[{"id": 1, "ts": "2026-11-04T01:00:00Z"}],
    )
    _, cursor = changed_partitions(warehouse_db.engine, EVENTS, None)
    warehouse_db.insert(
        table,
        [
            {"id": 2, "ts": "2026-11-03T21:00:00-05:00"},  # 2026-11-04T02:00Z: newer
            {"id": 3, "ts": "2026-11-04T05:00:00+05:00"},  # 2026-11-04T00:00Z: older
        ],
    )

    days, new_cursor = changed_partitions(warehouse_db.engine, EVENTS, cursor)

    assert cursor == "2026-11-04T01:00:00+00:00"
    assert (days, new_cursor) == (["2026-11-04"], "2026-11-04T02:00:00+00:00")


def test_text_that_is_not_a_timestamp_is_never_listed(warehouse_db: WarehouseDb) -> None:
    warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", Text),
        rows=[{"id": 1, "ts": "2026-11-03T10:00:00Z"}, {"id": 2, "ts": "2026-11-09 later"}],
    )

    assert changed_partitions(warehouse_db.engine, EVENTS, None) == (
        ["2026-11-03"],
        "2026-11-03T10:00:00+00:00",
    )


def test_a_query_source_is_followed_by_its_partition_column(warehouse_db: WarehouseDb) -> None:
    kind = KINDS[3]  # epoch-ms
    table = events_at(warehouse_db, kind, *FIRST_ROWS)
    source = SourceSpec(partition_column="ts", query="SELECT id, ts FROM events WHERE id > 1")
    _, cursor = changed_partitions(warehouse_db.engine, source, None)
    add(warehouse_db, table, kind, at(2026, 11, 8, 9, 0))

    assert cursor == kind.cursor(warehouse_db.backend, at(2026, 11, 3, 23, 59, 59))
    assert changed_partitions(warehouse_db.engine, source, cursor) == (
        ["2026-11-08"],
        kind.cursor(warehouse_db.backend, at(2026, 11, 8, 9, 0)),
    )

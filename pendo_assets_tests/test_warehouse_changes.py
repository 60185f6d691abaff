"""``changed_partitions``: the UTC days with rows in the change sensor's window, a fingerprint
of each day's rows, and the next cursor.

Each behaviour runs for every kind of partition column, on SQLite and on PostgreSQL (whose
reader is in New York time, so the days listed must be UTC days).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, Date, DateTime, Integer, Text

from pendo_assets.sync.source.warehouse import RecentPartitions, changed_partitions
from pendo_assets.sync.spec import SourceSpec

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
#: The start of the first day without a partition in most of these tests.
BEFORE = at(2026, 11, 6)
LATER = at(2026, 11, 8)


def scan(
    db: WarehouseDb,
    cursor: str | None = None,
    *,
    before: datetime | None = BEFORE,
    lookback_days: float = 2,
    source: SourceSpec = EVENTS,
) -> RecentPartitions:
    return changed_partitions(db.engine, source, cursor, before=before, lookback_days=lookback_days)


@EVERY_KIND
def test_without_a_cursor_the_days_within_lookback_of_before_are_listed(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    events_at(warehouse_db, kind, *FIRST_ROWS)

    recent = scan(warehouse_db, before=at(2026, 11, 6), lookback_days=3)

    assert recent.since == at(2026, 11, 3)
    assert list(recent.fingerprints) == ["2026-11-03", "2026-11-05"]


@EVERY_KIND
def test_the_cursor_is_the_greatest_value_written_for_its_kind(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    events_at(warehouse_db, kind, *FIRST_ROWS)

    recent = scan(warehouse_db)

    assert recent.cursor == kind.cursor(warehouse_db.backend, at(2026, 11, 5, 12, 0))


@EVERY_KIND
def test_with_a_cursor_the_window_starts_lookback_days_below_it(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    table = events_at(warehouse_db, kind, *FIRST_ROWS)
    cursor = scan(warehouse_db).cursor
    add(
        warehouse_db,
        table,
        kind,
        at(2026, 11, 7, 9, 0),
        at(2026, 11, 5, 18, 0),  # later on the cursor's own day
        at(2026, 11, 3, 8, 0),  # arrives late, older than the cursor, inside the window
        at(2026, 11, 2, 23, 0),  # arrives late, before the window
    )

    recent = scan(warehouse_db, cursor, before=LATER)

    assert recent.since == at(2026, 11, 3)  # the UTC midnight before 2026-11-03T12:00
    assert list(recent.fingerprints) == ["2026-11-03", "2026-11-05", "2026-11-07"]
    assert recent.cursor == kind.cursor(warehouse_db.backend, at(2026, 11, 7, 9, 0))


@EVERY_KIND
def test_rows_at_or_after_before_are_left_out_and_move_no_cursor(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    table = events_at(warehouse_db, kind, *FIRST_ROWS)
    add(warehouse_db, table, kind, BEFORE, at(2026, 11, 9, 1, 0))

    recent = scan(warehouse_db)

    assert list(recent.fingerprints) == ["2026-11-05"]
    assert recent.cursor == kind.cursor(warehouse_db.backend, at(2026, 11, 5, 12, 0))


@EVERY_KIND
def test_a_days_fingerprint_changes_with_its_rows_only(
    warehouse_db: WarehouseDb, kind: Kind
) -> None:
    table = events_at(warehouse_db, kind, *FIRST_ROWS)
    cursor = scan(warehouse_db).cursor
    before = scan(warehouse_db, cursor).fingerprints

    again = scan(warehouse_db, cursor).fingerprints
    add(warehouse_db, table, kind, at(2026, 11, 3, 5, 0))
    after = scan(warehouse_db, cursor).fingerprints

    assert again == before
    assert after["2026-11-05"] == before["2026-11-05"]
    assert after["2026-11-03"] != before["2026-11-03"]


def test_a_fingerprint_is_the_count_the_latest_value_and_a_digest(
    warehouse_db: WarehouseDb,
) -> None:
    events_at(warehouse_db, KINDS[3], *FIRST_ROWS)  # epoch-ms

    fingerprint = scan(warehouse_db, lookback_days=5).fingerprints["2026-11-03"]

    assert re.fullmatch(r"2:2026-11-03T23:59:59\+00:00:[0-9a-f]{16}", fingerprint)


@EVERY_KIND
def test_the_cursor_never_moves_back(warehouse_db: WarehouseDb, kind: Kind) -> None:
    events_at(warehouse_db, kind, *FIRST_ROWS)
    later = kind.cursor(warehouse_db.backend, at(2026, 11, 6, 12, 0))  # rows since moved on

    assert scan(warehouse_db, later).cursor == later


@EVERY_KIND
def test_an_empty_source_lists_no_days_and_no_cursor(warehouse_db: WarehouseDb, kind: Kind) -> None:
    events_at(warehouse_db, kind)

    assert scan(warehouse_db) == RecentPartitions(at(2026, 11, 4), {}, None)


@EVERY_KIND
def test_without_before_the_window_has_no_end(warehouse_db: WarehouseDb, kind: Kind) -> None:
    events_at(warehouse_db, kind, at(2026, 11, 2, 23, 0), at(2026, 11, 5, 12, 0), at(2030, 1, 1))
    cursor = kind.cursor(warehouse_db.backend, at(2026, 11, 5, 12, 0))

    recent = scan(warehouse_db, cursor, before=None)

    assert recent.since == at(2026, 11, 3)
    assert list(recent.fingerprints) == ["2026-11-05", "2030-01-01"]
    assert recent.cursor == kind.cursor(warehouse_db.backend, at(2030, 1, 1))


def test_only_the_partition_column_of_the_window_is_fetched(
    warehouse_db: WarehouseDb,
) -> None:
    kind = KINDS[3]  # epoch-ms
    events_at(warehouse_db, kind, *FIRST_ROWS)
    cursor = scan(warehouse_db).cursor
    statements: list[tuple[str, Any]] = []
    sa.event.listen(
        warehouse_db.engine,
        "before_cursor_execute",
        lambda conn, cur, statement, parameters, *rest: statements.append((statement, parameters)),
    )

    scan(warehouse_db, cursor)

    fetch, parameters = statements[-1]
    selected, _, condition = fetch.partition("FROM")
    assert selected.split() == ["SELECT", "events.ts"]
    assert "events.ts >=" in condition
    values = parameters.values() if isinstance(parameters, dict) else parameters
    assert kind.store(at(2026, 11, 3)) in values  # the window's start
    assert kind.store(BEFORE) in values  # and its end


def test_text_cursors_compare_instants_not_strings(warehouse_db: WarehouseDb) -> None:
    table = warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", Text),
        rows=[{"id": 1, "ts": "2026-11-04T01:00:00Z"}],
    )
    cursor = scan(warehouse_db).cursor
    warehouse_db.insert(
        table,
        [
            {"id": 2, "ts": "2026-11-03T21:00:00-05:00"},  # 2026-11-04T02:00Z: newer
            {"id": 3, "ts": "2026-11-04T05:00:00+05:00"},  # 2026-11-04T00:00Z: older
        ],
    )

    recent = scan(warehouse_db, cursor)

    assert cursor == "2026-11-04T01:00:00+00:00"
    assert (list(recent.fingerprints), recent.cursor) == (
        ["2026-11-04"],
        "2026-11-04T02:00:00+00:00",
    )


def test_text_that_is_not_a_timestamp_is_never_listed(warehouse_db: WarehouseDb) -> None:
    warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", Text),
        rows=[{"id": 1, "ts": "2026-11-05T10:00:00Z"}, {"id": 2, "ts": "2026-11-05 later"}],
    )

    recent = scan(warehouse_db)

    assert (list(recent.fingerprints), recent.cursor) == (
        ["2026-11-05"],
        "2026-11-05T10:00:00+00:00",
    )


def test_a_query_source_is_followed_by_its_partition_column(warehouse_db: WarehouseDb) -> None:
    kind = KINDS[3]  # epoch-ms
    table = events_at(warehouse_db, kind, *FIRST_ROWS)
    source = SourceSpec(partition_column="ts", query="SELECT id, ts FROM events WHERE id > 1")
    cursor = scan(warehouse_db, source=source, lookback_days=7).cursor
    add(warehouse_db, table, kind, at(2026, 11, 7, 9, 0))

    recent = scan(warehouse_db, cursor, before=LATER, source=source)

    assert cursor == kind.cursor(warehouse_db.backend, at(2026, 11, 3, 23, 59, 59))
    assert (list(recent.fingerprints), recent.cursor) == (
        ["2026-11-01", "2026-11-03", "2026-11-07"],
        kind.cursor(warehouse_db.backend, at(2026, 11, 7, 9, 0)),
    )


def test_a_late_row_of_a_date_column_on_the_cursors_own_day_changes_that_days_fingerprint(
    warehouse_db: WarehouseDb,
) -> None:
    # The worst case of a high-water mark: every later row of the cursor's day equals it.
    table = warehouse_db.create(
        "events",
        Column("id", Integer),
        Column("ts", Date),
        rows=[{"id": 1, "ts": date(2026, 11, 3)}, {"id": 2, "ts": date(2026, 11, 5)}],
    )
    first = scan(warehouse_db)
    warehouse_db.insert(table, [{"id": 3, "ts": date(2026, 11, 5)}])

    second = scan(warehouse_db, first.cursor)

    # SQLite keeps dates as text, read as ISO-8601 text.
    cursor = "2026-11-05" if warehouse_db.backend == "postgres" else "2026-11-05T00:00:00+00:00"
    assert (list(first.fingerprints), first.cursor) == (["2026-11-05"], cursor)
    assert second.fingerprints["2026-11-05"].startswith("2:")
    assert second.cursor == cursor
    assert list(scan(warehouse_db, cursor, before=None).fingerprints) == [
        "2026-11-03",
        "2026-11-05",
    ]

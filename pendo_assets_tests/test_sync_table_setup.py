"""State tables when several runs start at once: `create_tables_safely`, and the failure store's
tables created, upgraded and written by two "processes" (threads, each with its own engine)
released together by a barrier, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from pendo_assets.sync.record.failure_store import FailureStore, failures_table
from pendo_assets.sync.record.partition_runs import partition_runs_table
from pendo_assets.sync.record.table_setup import create_tables_safely
from pendo_assets.sync.results import RowFailure
from pendo_assets_tests.state_databases import BACKENDS, StateDatabases, open_databases, race

TRIALS = 20
STARTED = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
FAILURES_COLUMNS = [c.name for c in failures_table.columns]


@pytest.fixture
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateDatabases]:
    yield from open_databases(request, tmp_path)


def layout(engine: sa.Engine, table: str) -> tuple[list[str], list[str]]:
    """The table's column names in order, and its index names sorted."""
    inspector = sa.inspect(engine)
    columns = [column["name"] for column in inspector.get_columns(table)]
    return columns, sorted(str(index["name"]) for index in inspector.get_indexes(table))


def create_release_one_table(engine: sa.Engine) -> None:
    """`pendo_sync_failures` as the first release made it: no `retryable`, one row."""
    old = sa.Table(
        "pendo_sync_failures",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sync_name", sa.String(200), nullable=False),
        sa.Column("partition_key", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("record_id", sa.Text, nullable=True),
        sa.Column("field", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_pendo_sync_failures_sync_partition", "sync_name", "partition_key"),
        sa.Index("ix_pendo_sync_failures_record", "sync_name", "record_id"),
    )
    with engine.begin() as connection:
        old.create(connection)
        connection.execute(
            old.insert().values(
                sync_name="visitors",
                partition_key="2026-11-01",
                run_id="old-run",
                reason="HTTP 503",
                failed_at=STARTED,
            )
        )


def record(
    engine: sa.Engine, run_id: str, started: datetime, partition: str = "2026-11-01"
) -> None:
    """What a run that started at `started` records for `partition`: one retryable failure."""
    FailureStore(engine).record_run(
        sync_name="visitors",
        partition_key=partition,
        run_id=run_id,
        run_started_at=started,
        failures=[RowFailure(0, f"{run_id}-row", "HTTP 503", retryable=True)],
    )


# -- creating ----------------------------------------------------------------------------------


@BACKENDS
def test_two_runs_creating_the_failure_tables_at_once_both_succeed(
    databases: StateDatabases,
) -> None:
    errors: list[BaseException] = []
    for _ in range(TRIALS):
        database = databases.new()
        first, second = FailureStore(database()), FailureStore(database())
        errors += race(first.ensure_table, second.ensure_table)

    assert errors == []
    assert layout(database(), "pendo_sync_failures") == (
        FAILURES_COLUMNS,
        ["ix_pendo_sync_failures_record", "ix_pendo_sync_failures_sync_partition"],
    )
    assert sa.inspect(database()).has_table("pendo_sync_partition_runs")


@BACKENDS
def test_two_runs_recording_into_a_fresh_database_at_once_both_record(
    databases: StateDatabases,
) -> None:
    errors: list[BaseException] = []
    counts = []
    for _ in range(TRIALS):
        database = databases.new()
        errors += race(
            partial(record, database(), "run-1", STARTED, partition="2026-11-01"),
            partial(record, database(), "run-2", STARTED, partition="2026-11-02"),
        )
        counts.append(len(FailureStore(database()).query()))

    assert errors == []
    assert counts == [2] * TRIALS


@BACKENDS
def test_missing_indexes_of_an_existing_table_are_created(databases: StateDatabases) -> None:
    engine = databases.new()()
    with engine.begin() as connection:
        connection.execute(sa.schema.CreateTable(failures_table))  # the table, no index

    create_tables_safely(engine, [failures_table])

    assert layout(engine, "pendo_sync_failures")[1] == [
        "ix_pendo_sync_failures_record",
        "ix_pendo_sync_failures_sync_partition",
    ]


@BACKENDS
def test_a_column_that_cannot_be_added_in_place_is_left_to_the_callers_migration(
    databases: StateDatabases,
) -> None:
    engine = databases.new()()
    before = sa.Table("things", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    before.create(engine)
    after = sa.Table(
        "things",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.String(20), nullable=False),  # no default: existing rows lack one
        sa.Column("note", sa.Text, nullable=True),
    )

    create_tables_safely(engine, [after])

    assert layout(engine, "things")[0] == ["id", "note"]


# -- upgrading ---------------------------------------------------------------------------------


@BACKENDS
def test_a_failures_table_from_the_first_release_gains_retryable_false(
    databases: StateDatabases,
) -> None:
    engine = databases.new()()
    create_release_one_table(engine)

    [row] = FailureStore(engine).query()

    assert layout(engine, "pendo_sync_failures")[0] == FAILURES_COLUMNS
    assert (row["run_id"], row["retryable"]) == ("old-run", False)


@BACKENDS
def test_two_runs_upgrading_the_failures_table_at_once_both_succeed(
    databases: StateDatabases,
) -> None:
    errors: list[BaseException] = []
    for _ in range(TRIALS):
        database = databases.new()
        create_release_one_table(database())
        first, second = FailureStore(database()), FailureStore(database())
        errors += race(first.ensure_table, second.ensure_table)

    assert errors == []
    assert layout(database(), "pendo_sync_failures")[0] == FAILURES_COLUMNS


# -- recording ---------------------------------------------------------------------------------


@BACKENDS
def test_an_older_and_a_newer_run_recording_at_once_leave_the_newer_result_current(
    databases: StateDatabases,
) -> None:
    outcomes = []
    for _ in range(TRIALS):
        database = databases.new()
        FailureStore(database()).ensure_table()

        errors = race(
            partial(record, database(), "older", STARTED),
            partial(record, database(), "newer", STARTED + timedelta(minutes=5)),
        )
        rows = FailureStore(database()).query()
        with database().connect() as connection:
            current = connection.execute(sa.select(partition_runs_table.c.run_id)).scalar_one()
        outcomes.append(
            (errors, sorted((r["run_id"], r["resolved_at"] is None) for r in rows), current)
        )

    assert outcomes == [([], [("newer", True), ("older", False)], "newer")] * TRIALS

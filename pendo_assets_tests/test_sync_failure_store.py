"""Table `pendo_sync_failures` on SQLite and PostgreSQL: created (or upgraded) on first use,
written in chunks, read back exactly, and one transaction per run's result."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from pendo_assets.client import PendoClient
from pendo_assets.sync.engine import run_sync
from pendo_assets.sync.record.failure_store import FailureStore, failures_table
from pendo_assets.sync.record.partition_runs import partition_runs_table
from pendo_assets.sync.results import RowFailure
from pendo_assets.sync.spec import SourceSpec, SyncSpec

WHEN = datetime(2026, 11, 2, 3, 4, 5, 678000, tzinfo=UTC)
TABLE = "pendo_sync_failures"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A state database: a new SQLite file, or the test's own PostgreSQL schema."""
    if request.param == "sqlite":
        engine = sa.create_engine(request.getfixturevalue("sqlite_url"))
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("pg_schema")  # dropped with the table afterwards
        engine = sa.create_engine(url, connect_args={"options": f"-c search_path={schema}"})
    yield engine
    engine.dispose()


def utc(value: datetime) -> datetime:
    """SQLite keeps no time zone: its naive values are the UTC ones written."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def stored(store: FailureStore, **filters: Any) -> list[dict[str, Any]]:
    rows = store.query(**filters)
    return [{**row, "failed_at": utc(row["failed_at"])} for row in rows]


def test_the_table_is_created_on_first_use(engine: sa.Engine) -> None:
    assert not sa.inspect(engine).has_table(TABLE)
    store = FailureStore(engine)
    assert store.query() == []
    inspector = sa.inspect(engine)
    assert [c["name"] for c in inspector.get_columns(TABLE)] == [
        "id",
        "sync_name",
        "partition_key",
        "run_id",
        "record_id",
        "field",
        "reason",
        "http_status",
        "failed_at",
        "resolved_at",
        "retryable",
    ]
    assert sorted(i["name"] for i in inspector.get_indexes(TABLE)) == [
        "ix_pendo_sync_failures_record",
        "ix_pendo_sync_failures_sync_partition",
    ]
    FailureStore(engine).ensure_table()  # a second store finds it there


def test_failures_are_recorded_and_read_back_exactly(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    written = store.record_run(
        sync_name="visitors",
        partition_key="2026-11-02",
        run_id="run-1",
        run_started_at=WHEN,
        failures=[
            RowFailure(1, None, "visitorId identifier is missing or empty", field="visitorId"),
            RowFailure(4, "v-4", "rejected by Pendo: field 'seats' expects number, got string"),
            RowFailure(7, "v-7", "HTTP 503: unavailable", http_status=503, retryable=True),
        ],
        when=WHEN,
    )
    assert written == 3
    base = {
        "sync_name": "visitors",
        "partition_key": "2026-11-02",
        "run_id": "run-1",
        "failed_at": WHEN,
        "resolved_at": None,
    }
    assert stored(store) == [
        {
            **base,
            "id": 1,
            "record_id": None,
            "field": "visitorId",
            "reason": "visitorId identifier is missing or empty",
            "http_status": None,
            "retryable": False,
        },
        {
            **base,
            "id": 2,
            "record_id": "v-4",
            "field": None,
            "reason": "rejected by Pendo: field 'seats' expects number, got string",
            "http_status": None,
            "retryable": False,
        },
        {
            **base,
            "id": 3,
            "record_id": "v-7",
            "field": None,
            "reason": "HTTP 503: unavailable",
            "http_status": 503,
            "retryable": True,
        },
    ]


def test_queries_filter_by_sync_partition_and_run(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    for sync_name, partition, run in [
        ("visitors", "2026-11-01", "run-1"),
        ("visitors", "2026-11-02", "run-2"),
        ("events", "2026-11-02", "run-2"),
        ("events", None, "run-3"),
    ]:
        store.record_run(
            sync_name=sync_name,
            partition_key=partition,
            run_id=run,
            run_started_at=WHEN,
            failures=[RowFailure(0, f"{sync_name}/{partition}", "bad")],
            when=WHEN,
        )

    def ids(**filters: Any) -> list[str]:
        return [row["record_id"] for row in store.query(**filters)]

    assert ids() == [
        "visitors/2026-11-01",
        "visitors/2026-11-02",
        "events/2026-11-02",
        "events/None",
    ]
    assert ids(sync_name="visitors") == ["visitors/2026-11-01", "visitors/2026-11-02"]
    assert ids(partition_key="2026-11-02") == ["visitors/2026-11-02", "events/2026-11-02"]
    assert ids(run_id="run-2", sync_name="events") == ["events/2026-11-02"]
    assert ids(sync_name="nothing") == []


def test_failed_at_defaults_to_now_in_utc(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    before = datetime.now(UTC)
    store.record_run(
        sync_name="s",
        partition_key=None,
        run_id="r",
        run_started_at=before,
        failures=[RowFailure(0, "x", "y")],
    )
    [row] = stored(store)
    assert before <= row["failed_at"] <= datetime.now(UTC)


def test_twelve_thousand_failures_go_in_chunks_of_five_thousand_in_one_transaction(
    engine: sa.Engine,
) -> None:
    store = FailureStore(engine)
    store.ensure_table()
    inserts: list[int] = []
    commits: list[bool] = []

    @sa.event.listens_for(engine, "before_execute")
    def count_inserts(conn: Any, clause: Any, multiparams: Any, params: Any, options: Any) -> None:
        if isinstance(clause, sa.Insert) and clause.table is failures_table:
            inserts.append(len(multiparams))

    @sa.event.listens_for(engine, "commit")
    def count_commits(conn: Any) -> None:
        commits.append(True)

    failures = (RowFailure(i, f"v-{i}", f"reason {i}") for i in range(12_000))
    written = store.record_run(
        sync_name="events",
        partition_key="2026-11-02",
        run_id="big",
        run_started_at=WHEN,
        failures=failures,
        when=WHEN,
    )
    assert written == 12_000
    assert inserts == [5000, 5000, 2000]
    assert len(commits) == 1
    with engine.connect() as conn:
        count, first, last = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.min(failures_table.c.record_id),
                sa.func.max(failures_table.c.reason),
            ).where(failures_table.c.run_id == "big")
        ).one()
    assert (count, first, last) == (12_000, "v-0", "reason 9999")


def test_a_field_longer_than_the_column_is_clipped_not_refused(engine: sa.Engine) -> None:
    # a bad event property name from the data becomes the failure's field, whatever its length
    store = FailureStore(engine)
    name = "p" * 250
    store.record_run(
        sync_name="events",
        partition_key="2026-11-02",
        run_id="r",
        run_started_at=WHEN,
        failures=[RowFailure(0, "v-1", f"event property name {name!r} is too long", field=name)],
        when=WHEN,
    )
    [row] = store.query()
    assert row["field"] == "p" * 199 + "…"
    assert row["reason"] == f"event property name {name!r} is too long"


def test_a_syncs_failed_rows_are_recorded_with_their_reasons(
    engine: sa.Engine, sandbox: Any, client: PendoClient
) -> None:
    spec = SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "seats": "seats"},
        mode="update",
    )
    frame = pd.DataFrame([{"id": "", "seats": 1}, {"id": "v-3", "seats": [3]}], dtype=object)
    report = run_sync(spec, frame, client, partition_key="2026-11-02")
    store = FailureStore(engine)
    store.record_run(
        sync_name="visitors",
        partition_key="2026-11-02",
        run_id="run-9",
        run_started_at=WHEN,
        failures=report.failures,
        when=WHEN,
    )
    rows = store.query(run_id="run-9")
    assert [(r["record_id"], r["field"], r["reason"], r["retryable"]) for r in rows] == [
        (None, "visitorId", "visitorId identifier is missing or empty", False),
        (
            "v-3",
            "seats",
            "column 'seats': value is a list, not a JSON scalar (string, number, boolean or null)",
            False,
        ),
    ]


# -- one transaction per run: record_run --------------------------------------------------------

DAY = "2026-11-02"
MINUTE = timedelta(minutes=1)


def record_run(
    store: FailureStore,
    run_id: str,
    started: datetime,
    *record_ids: str,
    partition: str = DAY,
    sync_name: str = "visitors",
) -> int:
    """What a run of `partition` that started at `started` records when it ends."""
    return store.record_run(
        sync_name=sync_name,
        partition_key=partition,
        run_id=run_id,
        run_started_at=started,
        failures=[RowFailure(0, record_id, "HTTP 503", retryable=True) for record_id in record_ids],
        when=started + 10 * MINUTE,
    )


def unresolved(store: FailureStore) -> list[tuple[str, str]]:
    return [(r["run_id"], r["record_id"]) for r in store.query() if r["resolved_at"] is None]


def current_run(engine: sa.Engine, partition: str = DAY) -> tuple[str, datetime] | None:
    """The run whose result is current for the partition, and when it started."""
    table = partition_runs_table
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(table.c.run_id, table.c.run_started_at).where(
                table.c.sync_name == "visitors", table.c.partition_key == partition
            )
        ).first()
    return None if row is None else (row[0], utc(row[1]))


def test_a_run_resolves_earlier_failures_of_its_partition_and_records_its_own(
    engine: sa.Engine,
) -> None:
    store = FailureStore(engine)
    record_run(store, "run-1", WHEN, "v-1", "v-2")

    written = record_run(store, "run-2", WHEN + 60 * MINUTE, "v-2")

    assert written == 1
    assert unresolved(store) == [("run-2", "v-2")]
    assert [(r["run_id"], utc(r["resolved_at"])) for r in stored(store, run_id="run-1")] == [
        ("run-1", WHEN + 70 * MINUTE),
        ("run-1", WHEN + 70 * MINUTE),
    ]
    assert current_run(engine) == ("run-2", WHEN + 60 * MINUTE)


def test_a_run_without_failures_resolves_its_partition(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    record_run(store, "run-1", WHEN, "v-1")

    assert record_run(store, "run-2", WHEN + 60 * MINUTE) == 0

    assert unresolved(store) == []
    assert current_run(engine) == ("run-2", WHEN + 60 * MINUTE)


def test_a_run_that_started_before_the_current_one_records_only_history(
    engine: sa.Engine,
) -> None:
    store = FailureStore(engine)
    record_run(store, "newer", WHEN + 5 * MINUTE, "v-new")

    written = record_run(store, "older", WHEN, "v-old")  # ends after the newer run

    assert written == 1
    assert unresolved(store) == [("newer", "v-new")]
    [late] = stored(store, run_id="older")
    assert utc(late["resolved_at"]) == WHEN + 10 * MINUTE
    assert current_run(engine) == ("newer", WHEN + 5 * MINUTE)


def test_a_newer_run_without_failures_is_not_overwritten_by_an_older_one(
    engine: sa.Engine,
) -> None:
    store = FailureStore(engine)
    record_run(store, "newer", WHEN + 5 * MINUTE)

    record_run(store, "older", WHEN, "v-old")

    assert unresolved(store) == []
    assert current_run(engine) == ("newer", WHEN + 5 * MINUTE)


def test_a_retried_step_of_the_same_run_replaces_that_runs_record(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    record_run(store, "run-1", WHEN, "v-1", "v-2")

    record_run(store, "run-1", WHEN, "v-2")  # the step's retry: same run, same start

    assert unresolved(store) == [("run-1", "v-2")]
    assert len(store.query()) == 3


def test_a_run_touches_only_its_own_sync_and_partition(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    record_run(store, "run-1", WHEN, "v-1", partition="2026-11-01")
    record_run(store, "run-2", WHEN, "e-1", sync_name="events")
    record_run(store, "late", WHEN + 60 * MINUTE, "v-2")

    assert unresolved(store) == [("run-1", "v-1"), ("run-2", "e-1"), ("late", "v-2")]


def test_nothing_changes_when_a_runs_failures_cannot_be_written(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    record_run(store, "run-1", WHEN, "v-1")
    without_reason = RowFailure(0, "v-9", None)  # type: ignore[arg-type]  # NOT NULL violated

    with pytest.raises(sa.exc.IntegrityError):
        store.record_run(
            sync_name="visitors",
            partition_key=DAY,
            run_id="run-2",
            run_started_at=WHEN + 60 * MINUTE,
            failures=[RowFailure(0, "v-1", "HTTP 503", retryable=True), without_reason],
        )

    assert unresolved(store) == [("run-1", "v-1")]
    assert [r["run_id"] for r in store.query()] == ["run-1"]
    assert current_run(engine) == ("run-1", WHEN)


def test_a_naive_start_is_taken_as_utc(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    record_run(store, "newer", WHEN + 5 * MINUTE)

    record_run(store, "naive", (WHEN + 6 * MINUTE).replace(tzinfo=None), "v-1")

    assert unresolved(store) == [("naive", "v-1")]


# -- which partitions a retry can help ---------------------------------------------------------


def test_only_partitions_with_unresolved_retryable_failures_are_listed_for_retries(
    engine: sa.Engine,
) -> None:
    store = FailureStore(engine)
    failures = {
        "2026-11-01": [RowFailure(0, "v-1", "visitorId identifier is missing or empty")],
        "2026-11-02": [
            RowFailure(0, "v-2", "visitorId identifier is missing or empty"),
            RowFailure(1, "v-3", "HTTP 503", retryable=True),
            RowFailure(2, "v-4", "not sent: Pendo unreachable", retryable=True),
        ],
    }
    for n, (partition, rows) in enumerate(failures.items()):
        store.record_run(
            sync_name="visitors",
            partition_key=partition,
            run_id=f"run-{n}",
            run_started_at=WHEN,
            failures=rows,
            when=WHEN + n * MINUTE,
        )

    retryable = store.unresolved_partitions("visitors")
    everything = store.unresolved_partitions("visitors", retryable_only=False)

    assert {key: (count, utc(at)) for key, (count, at) in retryable.items()} == {
        "2026-11-02": (2, WHEN + MINUTE)
    }
    assert {key: (count, utc(at)) for key, (count, at) in everything.items()} == {
        "2026-11-01": (1, WHEN),
        "2026-11-02": (3, WHEN + MINUTE),
    }

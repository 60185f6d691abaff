"""Table `pendo_sync_failures` on SQLite and PostgreSQL: created on first use, written in
chunks, read back exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from pendo_assets.client import PendoClient
from pendo_assets.sync.engine import run_sync
from pendo_assets.sync.failure_store import FailureStore, failures_table
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
    ]
    assert sorted(i["name"] for i in inspector.get_indexes(TABLE)) == [
        "ix_pendo_sync_failures_record",
        "ix_pendo_sync_failures_sync_partition",
    ]
    FailureStore(engine).ensure_table()  # a second store finds it there


def test_failures_are_recorded_and_read_back_exactly(engine: sa.Engine) -> None:
    store = FailureStore(engine)
    written = store.record(
        sync_name="visitors",
        partition_key="2026-11-02",
        run_id="run-1",
        failures=[
            RowFailure(1, None, "visitorId identifier is missing or empty", field="visitorId"),
            RowFailure(4, "v-4", "rejected by Pendo: field 'seats' expects number, got string"),
            RowFailure(7, "v-7", "HTTP 400: bad request", field="plan", http_status=400),
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
        },
        {
            **base,
            "id": 2,
            "record_id": "v-4",
            "field": None,
            "reason": "rejected by Pendo: field 'seats' expects number, got string",
            "http_status": None,
        },
        {
            **base,
            "id": 3,
            "record_id": "v-7",
            "field": "plan",
            "reason": "HTTP 400: bad request",
            "http_status": 400,
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
        store.record(
            sync_name=sync_name,
            partition_key=partition,
            run_id=run,
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
    store.record(sync_name="s", partition_key=None, run_id="r", failures=[RowFailure(0, "x", "y")])
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
    written = store.record(
        sync_name="events", partition_key="2026-11-02", run_id="big", failures=failures, when=WHEN
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
    store.record(
        sync_name="events",
        partition_key="2026-11-02",
        run_id="r",
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
    frame = pd.DataFrame(
        [{"id": "", "seats": 1}, {"id": "stranger", "seats": 2}, {"id": "v-3", "seats": [3]}],
        dtype=object,
    )
    report = run_sync(spec, frame, client, partition_key="2026-11-02")
    store = FailureStore(engine)
    store.record(
        sync_name="visitors",
        partition_key="2026-11-02",
        run_id="run-9",
        failures=report.failures,
        when=WHEN,
    )
    assert [(r["record_id"], r["field"], r["reason"]) for r in store.query(run_id="run-9")] == [
        (None, "visitorId", "visitorId identifier is missing or empty"),
        ("stranger", None, "not found in Pendo"),
        (
            "v-3",
            "seats",
            "column 'seats': value is not a JSON scalar (string, number, boolean or null)",
        ),
    ]

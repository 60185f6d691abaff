"""The three kinds of sync from a PostgreSQL warehouse through ``dagster.materialize``.

Timestamps are real ``timestamptz`` and the warehouse session runs in New York time, so a row
lands in the right partition only if days are cut in UTC. The sync state (``pendo_sync_state``,
``pendo_sync_failures``) can live on PostgreSQL too. Never skipped under CI=true (see the
``postgres_url`` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Boolean, Column, DateTime, Integer, Numeric, Text
from sqlalchemy.dialects.postgresql import JSONB

from pendo_assets.defs.database_resources import SyncStateResource
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.spec import SourceSpec, SyncSpec

pytestmark = pytest.mark.postgres


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
def warehouse(postgres_url: str, pg_schema: str) -> Iterator[Any]:
    """``warehouse.create(name, *columns, rows=...)`` in the test's schema; ``warehouse.url``
    reads it in a New York session."""
    writer = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    url = sa.make_url(postgres_url).update_query_dict({"options": "-c timezone=America/New_York"})

    class Warehouse:
        schema = pg_schema
        reader_url = url.render_as_string(hide_password=False)

        def create(self, name: str, *columns: Column[Any], rows: list[dict[str, Any]]) -> str:
            table = sa.Table(name, sa.MetaData(), *columns, schema=pg_schema)
            with writer.begin() as conn:
                table.create(conn)
                conn.execute(table.insert(), rows)
            return f"{pg_schema}.{name}"

    yield Warehouse()
    writer.dispose()


def test_visitor_metadata_from_postgres_lands_exactly_in_pendo(
    materialize_sync: Any, sandbox: SandboxServer, warehouse: Any, sync_day: date
) -> None:
    table = warehouse.create(
        "visitors",
        Column("id", Text),
        Column("plan", Text),
        Column("seats", Integer),
        Column("is_trial", Boolean),
        Column("signup_date", DateTime(timezone=True)),
        Column("email", Text),
        Column("updated_at", DateTime(timezone=True)),
        rows=[
            {
                "id": "v-early",  # 03:00 UTC: the evening before in New York
                "plan": "pro",
                "seats": 12,
                "is_trial": False,
                "signup_date": utc(date(2026, 1, 15), 9, 30),
                "email": "early@example.com",
                "updated_at": utc(sync_day, 3),
            },
            {
                "id": "v-late",
                "plan": "starter",
                "seats": None,
                "is_trial": True,
                "signup_date": None,
                "email": "late@example.com",
                "updated_at": utc(sync_day, 23, 30),
            },
            {
                "id": "v-next-day",  # 01:00 UTC the next day: still this day in New York
                "plan": "pro",
                "seats": 1,
                "is_trial": False,
                "signup_date": None,
                "email": "next@example.com",
                "updated_at": utc(sync_day + timedelta(days=1), 1),
            },
        ],
    )
    spec = SyncSpec(
        name="pg_visitors",
        object_type="visitor_metadata",
        source=SourceSpec(table=table, partition_column="updated_at"),
        mapping={
            "id": "visitorId",
            "plan": "plan",
            "seats": "seats",
            "is_trial": "is_trial",
            "signup_date": "signup_date",
            "email": "agent.email",
        },
    )

    run = materialize_sync(spec, sync_day, warehouse_url=warehouse.reader_url)

    assert run.result.success
    assert sandbox.state(requests=False)["metadata"]["visitor"] == {
        "v-early": {
            "custom": {
                "plan": "pro",
                "seats": 12,
                "is_trial": False,
                "signup_date": epoch_ms(utc(date(2026, 1, 15), 9, 30)),
            },
            "agent": {"email": "early@example.com"},
        },
        "v-late": {
            "custom": {"plan": "starter", "seats": None, "is_trial": True, "signup_date": None},
            "agent": {"email": "late@example.com"},
        },
    }
    metadata = run.metadata("pendo")
    assert (metadata["dagster/row_count"], metadata["sent"], metadata["failed"]) == (2, 2, 0)


def test_account_metadata_from_postgres_lands_exactly_in_pendo(
    materialize_sync: Any, sandbox: SandboxServer, warehouse: Any, sync_day: date
) -> None:
    table = warehouse.create(
        "accounts",
        Column("id", Text),
        Column("name", Text),
        Column("tier", Text),
        Column("arr", Numeric(12, 2)),
        Column("updated_at", DateTime(timezone=True)),
        rows=[
            {
                "id": "a-1",
                "name": "Acme",
                "tier": "gold",
                "arr": Decimal("120000.50"),
                "updated_at": utc(sync_day, 0),
            },
            {
                "id": "a-2",
                "name": "Globex",
                "tier": "silver",
                "arr": None,
                "updated_at": utc(sync_day, 23, 59),
            },
            {
                "id": "a-before",
                "name": "Initech",
                "tier": "bronze",
                "arr": Decimal("1"),
                "updated_at": utc(sync_day, 0) - timedelta(seconds=1),
            },
        ],
    )
    spec = SyncSpec(
        name="pg_accounts",
        object_type="account_metadata",
        source=SourceSpec(table=table, partition_column="updated_at"),
        mapping={"id": "accountId", "name": "name", "tier": "tier", "arr": "arr"},
    )

    run = materialize_sync(spec, sync_day, warehouse_url=warehouse.reader_url)

    assert run.result.success
    assert sandbox.state(requests=False)["metadata"]["account"] == {
        "a-1": {"custom": {"name": "Acme", "tier": "gold", "arr": 120000.5}, "agent": {}},
        "a-2": {"custom": {"name": "Globex", "tier": "silver", "arr": None}, "agent": {}},
    }


def test_track_events_from_postgres_land_exactly_in_pendo(
    materialize_sync: Any, sandbox: SandboxServer, warehouse: Any, sync_day: date
) -> None:
    table = warehouse.create(
        "events",
        Column("visitor_id", Text),
        Column("account_id", Text),
        Column("event_name", Text),
        Column("occurred_at", DateTime(timezone=True)),
        Column("properties", JSONB),
        Column("url", Text),
        rows=[
            {
                "visitor_id": "v-1",
                "account_id": "a-1",
                "event_name": "Report Exported",
                "occurred_at": utc(sync_day, 2, 15) + timedelta(milliseconds=250),
                "properties": {"format": "csv", "rows": 1200},
                "url": "https://app.example.com/reports/1",
            },
            {
                "visitor_id": "v-2",
                "account_id": None,
                "event_name": "Signed In",
                "occurred_at": utc(sync_day, 23, 59),
                "properties": None,
                "url": None,
            },
            {
                "visitor_id": "v-3",
                "account_id": "a-1",
                "event_name": "Next Day",
                "occurred_at": utc(sync_day + timedelta(days=1), 0),
                "properties": None,
                "url": None,
            },
        ],
    )
    spec = SyncSpec(
        name="pg_events",
        object_type="track_events",
        source=SourceSpec(table=table, partition_column="occurred_at"),
        mapping={
            "visitor_id": "visitorId",
            "account_id": "accountId",
            "event_name": "event",
            "occurred_at": "timestamp",
            "properties": "properties",
            "url": "context_url",
        },
    )

    run = materialize_sync(spec, sync_day, warehouse_url=warehouse.reader_url)

    assert run.result.success
    state = sandbox.state()
    bodies = [r["body"] for r in state["requests"] if r["path"] == "/data/track"]
    assert sorted(bodies, key=lambda body: body["visitorId"]) == [
        {
            "type": "track",
            "event": "Report Exported",
            "visitorId": "v-1",
            "accountId": "a-1",
            "timestamp": epoch_ms(utc(sync_day, 2, 15)) + 250,
            "properties": {"format": "csv", "rows": 1200},
            "context": {"url": "https://app.example.com/reports/1"},
        },
        {
            "type": "track",
            "event": "Signed In",
            "visitorId": "v-2",
            "timestamp": epoch_ms(utc(sync_day, 23, 59)),
            "context": {},
        },
    ]
    assert sorted(e["visitorId"] for e in state["events"]) == ["v-1", "v-2"]


def test_a_bad_postgres_row_is_stored_as_a_failure_like_any_other(
    materialize_sync: Any, warehouse: Any, sync_day: date, stored_failures: Any
) -> None:
    table = warehouse.create(
        "events",
        Column("visitor_id", Text),
        Column("event_name", Text),
        Column("occurred_at", DateTime(timezone=True)),
        Column("properties", JSONB),
        rows=[
            {
                "visitor_id": "v-1",
                "event_name": "Saved",
                "occurred_at": utc(sync_day, 12),
                "properties": {"2fast": True},
            }
        ],
    )
    spec = SyncSpec(
        name="pg_events",
        object_type="track_events",
        source=SourceSpec(table=table, partition_column="occurred_at"),
        mapping={
            "visitor_id": "visitorId",
            "event_name": "event",
            "occurred_at": "timestamp",
            "properties": "properties",
        },
        max_failure_rate=1.0,
    )

    run = materialize_sync(spec, sync_day, warehouse_url=warehouse.reader_url)

    [failure] = stored_failures()
    assert (failure["run_id"], failure["partition_key"]) == (run.run_id, sync_day.isoformat())
    assert (failure["record_id"], failure["field"], failure["reason"]) == (
        "v-1",
        "2fast",
        "event property name '2fast' starts with a digit; Pendo would hide it",
    )
    assert run.metadata("pendo")["failed"] == 1


def test_sync_state_on_postgres_lets_a_second_run_skip_what_pendo_already_has(
    materialize_sync: Any,
    sync_resources: Any,
    sandbox: SandboxServer,
    warehouse: Any,
    postgres_url: str,
    pg_schema: str,
    sync_day: date,
) -> None:
    table = warehouse.create(
        "visitors",
        Column("id", Text),
        Column("plan", Text),
        Column("updated_at", DateTime(timezone=True)),
        rows=[
            {"id": "v-1", "plan": "pro", "updated_at": utc(sync_day, 8)},
            {"id": "v-2", "plan": "starter", "updated_at": utc(sync_day, 9)},
        ],
    )
    spec = SyncSpec(
        name="pg_state_visitors",
        object_type="visitor_metadata",
        source=SourceSpec(table=table, partition_column="updated_at"),
        mapping={"id": "visitorId", "plan": "plan"},
    )
    # The state tables go to the test's own schema, dropped afterwards.
    state_url = sa.make_url(postgres_url).update_query_dict(
        {"options": f"-c search_path={pg_schema}"}
    )

    def resources() -> dict[str, Any]:
        return {
            **sync_resources(warehouse_url=warehouse.reader_url),
            "sync_state": SyncStateResource(url=state_url.render_as_string(hide_password=False)),
        }

    runs = [materialize_sync(spec, sync_day, resources=resources()) for _ in range(2)]

    assert [
        (r.metadata("pendo")["sent"], r.metadata("pendo")["skipped_unchanged"]) for r in runs
    ] == [
        (2, 0),  # the first run sends both
        (0, 2),  # the second finds both unchanged in pendo_sync_state
    ]
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        keys = conn.execute(
            sa.text(f"SELECT record_key FROM {pg_schema}.pendo_sync_state ORDER BY record_key")
        ).scalars()
        assert list(keys) == ["v-1", "v-2"]
    engine.dispose()


def test_an_unchanged_partition_says_so_in_its_metadata_and_is_not_read(
    materialize_sync: Any, sandbox: SandboxServer, warehouse: Any, sync_day: date
) -> None:
    table = warehouse.create(
        "visitors",
        Column("id", Text),
        Column("plan", Text),
        Column("updated_at", DateTime(timezone=True)),
        rows=[{"id": f"v-{i}", "plan": "pro", "updated_at": utc(sync_day, i)} for i in range(3)],
    )
    spec = SyncSpec(
        name="pg_unchanged",
        object_type="visitor_metadata",
        source=SourceSpec(table=table, partition_column="updated_at"),
        mapping={"id": "visitorId", "plan": "plan"},
    )

    first = materialize_sync(spec, sync_day, warehouse_url=warehouse.reader_url)
    sandbox.reset()
    second = materialize_sync(spec, sync_day, warehouse_url=warehouse.reader_url)

    assert first.metadata("pendo")["partition_fingerprint"] == "kept for the next run"
    metadata = second.metadata("pendo")
    assert metadata["partition_fingerprint"] == (
        f"unchanged since run {first.run_id}: rows not read"
    )
    assert (metadata["dagster/row_count"], metadata["skipped_unchanged"]) == (3, 3)
    assert (metadata["sent"], metadata["requests"]) == (0, 0)
    assert sandbox.state()["requests"] == []

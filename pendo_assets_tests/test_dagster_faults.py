"""Materializations against a sandbox that answers ~30% of Pendo API requests with a 429 or a
5xx (seeded, ``Retry-After: 0`` when it sends one): they succeed, retry, and account for every
row, and what they count as sent is exactly what the sandbox stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, DateTime, Integer, Text

from pendo_assets.sandbox import SandboxConfig, SandboxServer
from pendo_assets.sync.spec import SourceSpec, SyncSpec

VISITORS = SyncSpec(
    name="flaky_visitors",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan", "seats": "seats", "email": "agent.email"},
    max_failure_rate=0.2,
)
EVENTS = SyncSpec(
    name="flaky_events",
    object_type="track_events",
    source=SourceSpec(partition_column="occurred_at", table="events"),
    mapping={"visitor_id": "visitorId", "event_name": "event", "occurred_at": "timestamp"},
    max_failure_rate=0.2,
)


@pytest.fixture(scope="module")
def faulty_server(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    config = SandboxConfig(
        integration_key=sandbox_config.integration_key,
        track_event_secret=sandbox_config.track_event_secret,
        fields=sandbox_config.fields,
        agent_fields=sandbox_config.agent_fields,
        fault_rate=0.3,
        seed=20261126,
        retry_after_seconds=0,
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def faulty(faulty_server: SandboxServer) -> SandboxServer:
    """The faulty sandbox, reset: empty, and its fault generator re-seeded."""
    faulty_server.reset()
    return faulty_server


@pytest.fixture
def faulty_resources(sync_resources: Any, faulty: SandboxServer) -> dict[str, Any]:
    # Eight attempts: a request failing all of them (0.3**8) would fail its rows, and the
    # exact counts below would no longer hold.
    return sync_resources(base_url=faulty.url, max_attempts=8, batch_size=5)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute))


def visitor(visitor_id: str | None, plan: str, seats: int, updated_at: datetime) -> dict[str, Any]:
    email = f"{visitor_id}@example.com"
    return {
        "id": visitor_id,
        "plan": plan,
        "seats": seats,
        "email": email,
        "updated_at": updated_at,
    }


def counts(metadata: dict[str, Any]) -> dict[str, int]:
    return {k: metadata[k] for k in ("dagster/row_count", "sent", "failed", "skipped")}


def test_visitor_sync_succeeds_through_injected_faults_with_every_row_accounted_for(
    materialize_sync: Any,
    faulty: SandboxServer,
    faulty_resources: dict[str, Any],
    sqlite_url: str,
    sync_day: date,
    stored_failures: Any,
) -> None:
    good = [f"v-{n:02d}" for n in range(40)]
    rows = [visitor(v, "pro", n, at(sync_day, 1, n)) for n, v in enumerate(good)]
    rows.append(visitor(None, "pro", 1, at(sync_day, 2)))
    rows.append(visitor("v-00", "team", 99, at(sync_day, 3)))  # supersedes the first v-00
    engine = sa.create_engine(sqlite_url)
    table = sa.Table(
        "visitors",
        sa.MetaData(),
        Column("id", Text),
        Column("plan", Text),
        Column("seats", Integer),
        Column("email", Text),
        Column("updated_at", DateTime),
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), rows)
    engine.dispose()

    run = materialize_sync(VISITORS, sync_day, resources=faulty_resources)

    assert run.result.success
    metadata = run.metadata("pendo")
    assert counts(metadata) == {"dagster/row_count": 42, "sent": 40, "failed": 1, "skipped": 1}
    assert metadata["retried"] > 0
    state = faulty.state(requests=False)
    assert state["counters"]["faults_injected"] > 0
    assert metadata["requests"] == state["counters"]["requests"]
    stored = state["metadata"]["visitor"]
    assert sorted(stored) == good
    assert stored["v-00"] == {
        "custom": {"plan": "team", "seats": 99},
        "agent": {"email": "v-00@example.com"},
    }
    assert [(f["record_id"], f["field"]) for f in stored_failures()] == [(None, "visitorId")]


def test_event_sync_succeeds_through_injected_faults_without_duplicates(
    materialize_sync: Any,
    faulty: SandboxServer,
    faulty_resources: dict[str, Any],
    sqlite_url: str,
    sync_day: date,
) -> None:
    start = int(datetime.combine(sync_day, time(6), tzinfo=UTC).timestamp() * 1000)
    rows = [
        {"visitor_id": f"v-{n:02d}", "event_name": "Saved", "occurred_at": start + n * 60_000}
        for n in range(30)
    ] + [{"visitor_id": "v-00", "event_name": "", "occurred_at": start + 3_600_000}]
    engine = sa.create_engine(sqlite_url)
    table = sa.Table(
        "events",
        sa.MetaData(),
        Column("visitor_id", Text),
        Column("event_name", Text),
        Column("occurred_at", BigInteger),
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), rows)
    engine.dispose()

    run = materialize_sync(EVENTS, sync_day, resources=faulty_resources)

    assert run.result.success
    metadata = run.metadata("pendo")
    assert counts(metadata) == {"dagster/row_count": 31, "sent": 30, "failed": 1, "skipped": 0}
    assert metadata["retried"] > 0
    state = faulty.state(requests=False)
    assert state["counters"]["faults_injected"] > 0
    assert metadata["requests"] == state["counters"]["requests"]
    assert sorted((e["visitorId"], e["timestamp"]) for e in state["events"]) == [
        (f"v-{n:02d}", start + n * 60_000) for n in range(30)
    ]

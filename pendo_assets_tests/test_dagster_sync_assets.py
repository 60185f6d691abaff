"""``warehouse/<name>`` and ``pendo/<name>`` through ``dagster.materialize``, one partition each.

For each object type: a SQLite warehouse built here, the exact payloads the sandbox stored, and
the counts the pendo asset's materialization reports. A metadata step first reads Pendo's schema
(one GET) and sends values in the types Pendo declares; ``pendo_sync_state`` at the state URL
remembers what Pendo accepted, so a later run of a partition sends only what changed.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Integer, Text

from pendo_assets.defs import database_resources
from pendo_assets.defs.factory import daily_partitions
from pendo_assets.defs.sync_assets import build_sync_assets
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.spec import SourceSpec, SyncSpec
from pendo_assets_tests.conftest import SyncMaterialization

VISITORS = SyncSpec(
    name="visitors_to_pendo",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={
        "id": "visitorId",
        "plan": "plan",
        "seats": "seats",
        "is_trial": "is_trial",
        "signup_date": "signup_date",
        "email": "agent.email",
    },
)
ACCOUNTS = SyncSpec(
    name="accounts_to_pendo",
    object_type="account_metadata",
    source=SourceSpec(partition_column="updated_at", table="accounts"),
    mapping={"id": "accountId", "name": "name", "tier": "tier", "arr": "arr"},
)
EVENTS = SyncSpec(
    name="events_to_pendo",
    object_type="track_events",
    source=SourceSpec(partition_column="occurred_at", table="events"),
    mapping={
        "visitor_id": "visitorId",
        "account_id": "accountId",
        "event_name": "event",
        "occurred_at": "timestamp",
        "properties": "properties",
        "feature": "feature",
        "ip": "context_ip",
        "user_agent": "context_user_agent",
        "url": "context_url",
    },
)
SCHEMA = "/api/v1/metadata/schema/visitor"
CUSTOM = "/api/v1/metadata/visitor/custom/value"
AGENT = "/api/v1/metadata/visitor/agent/value"
# signup_date is a `time` field in Pendo: the warehouse's ISO text '2026-01-15T09:30:00Z'
# reaches Pendo as epoch milliseconds.
SIGNUP_MS = 1768469400000


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A naive UTC time on ``day``, as the warehouse stores it."""
    return datetime.combine(day, time(hour, minute))


def epoch_ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def create(url: str, name: str, *columns: Column[Any], rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    table = sa.Table(name, sa.MetaData(), *columns)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), rows)
    engine.dispose()


def visitors_table(url: str, rows: list[dict[str, Any]]) -> None:
    create(
        url,
        "visitors",
        Column("id", Text),
        Column("plan", Text),
        Column("seats", Integer),
        Column("is_trial", Boolean),
        Column("signup_date", Text),
        Column("email", Text),
        Column("updated_at", DateTime),
        rows=rows,
    )


def visitor(
    visitor_id: str | None, updated_at: datetime, plan: str = "pro", **values: Any
) -> dict[str, Any]:
    row = {
        "id": visitor_id,
        "plan": plan,
        "seats": 10,
        "is_trial": False,
        "signup_date": "2026-01-15T09:30:00Z",
        "email": f"{visitor_id}@example.com",
        "updated_at": updated_at,
    }
    return {**row, **values}


@pytest.fixture
def visitor_rows(sqlite_url: str, sync_day: date) -> None:
    """Four rows on the day (v-2 twice: the later row wins) and one on each neighbouring day."""
    visitors_table(
        sqlite_url,
        [
            visitor("v-before", at(sync_day - timedelta(days=1), 23, 59)),
            visitor("v-1", at(sync_day, 0), plan="starter", seats=None, is_trial=True),
            visitor("v-2", at(sync_day, 9), plan="starter", seats=3),
            visitor("v-3", at(sync_day, 12), plan="enterprise", seats=250),
            visitor("v-2", at(sync_day, 18), plan="pro", seats=40, email="v2@new.example.com"),
            visitor("v-after", at(sync_day + timedelta(days=1), 0)),
        ],
    )


def account(
    account_id: str, name: str, tier: str, arr: float | None, updated_at: str
) -> dict[str, Any]:
    return {"id": account_id, "name": name, "tier": tier, "arr": arr, "updated_at": updated_at}


@pytest.fixture
def account_rows(sqlite_url: str, sync_day: date) -> None:
    """Accounts whose ISO-8601 text updated_at falls on the day in UTC (one only in UTC)."""
    day = sync_day.isoformat()
    next_day = (sync_day + timedelta(days=1)).isoformat()
    create(
        sqlite_url,
        "accounts",
        Column("id", Text),
        Column("name", Text),
        Column("tier", Text),
        Column("arr", Float),
        Column("updated_at", Text),
        rows=[
            account("a-1", "Acme", "gold", 120000.5, f"{day}T08:00:00Z"),
            account("a-2", "Globex", "silver", None, f"{next_day}T01:00:00+02:00"),
            account("a-3", "Initech", "bronze", 900.0, f"{next_day}T00:00:00Z"),
        ],
    )


@pytest.fixture
def event_rows(sqlite_url: str, sync_day: date) -> list[dict[str, Any]]:
    """Three visitors' events on the day (epoch milliseconds) and one the next day."""
    rows = [
        {
            "visitor_id": "v-1",
            "account_id": "a-1",
            "event_name": "Report Exported",
            "occurred_at": epoch_ms(at(sync_day, 10)) + 123,
            "properties": json.dumps({"format": "csv", "rows": 1200}),
            "feature": "reports",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0",
            "url": "https://app.example.com/reports/1",
        },
        {
            "visitor_id": "v-2",
            "account_id": None,
            "event_name": "Signed In",
            "occurred_at": epoch_ms(at(sync_day, 11)),
            "properties": None,
            "feature": None,
            "ip": None,
            "user_agent": None,
            "url": None,
        },
        {
            "visitor_id": "v-3",
            "account_id": "a-2",
            "event_name": "Invite Sent",
            "occurred_at": epoch_ms(at(sync_day, 23, 59)),
            "properties": None,
            "feature": "team",
            "ip": "198.51.100.1",
            "user_agent": None,
            "url": None,
        },
        {
            "visitor_id": "v-4",
            "account_id": "a-1",
            "event_name": "Next Day",
            "occurred_at": epoch_ms(at(sync_day + timedelta(days=1), 0)),
            "properties": None,
            "feature": None,
            "ip": None,
            "user_agent": None,
            "url": None,
        },
    ]
    create(
        sqlite_url,
        "events",
        Column("visitor_id", Text),
        Column("account_id", Text),
        Column("event_name", Text),
        Column("occurred_at", BigInteger),
        Column("properties", Text),
        Column("feature", Text),
        Column("ip", Text),
        Column("user_agent", Text),
        Column("url", Text),
        rows=rows,
    )
    return rows


def track_bodies(sandbox: SandboxServer) -> list[dict[str, Any]]:
    """The bodies of the track requests the sandbox received, by visitor."""
    bodies = [r["body"] for r in sandbox.state()["requests"] if r["path"] == "/data/track"]
    return sorted(bodies, key=lambda body: (body["visitorId"], body["timestamp"]))


# -- visitor metadata ----------------------------------------------------------------------------


@pytest.mark.usefixtures("visitor_rows")
def test_visitor_partition_writes_custom_fields_and_the_agent_email_of_that_day(
    materialize_sync: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    run = materialize_sync(VISITORS, sync_day)

    assert run.result.success
    assert sandbox.state(requests=False)["metadata"]["visitor"] == {
        "v-1": {
            "custom": {
                "plan": "starter",
                "seats": None,
                "is_trial": True,
                "signup_date": SIGNUP_MS,
            },
            "agent": {"email": "v-1@example.com"},
        },
        "v-2": {
            "custom": {
                "plan": "pro",
                "seats": 40,
                "is_trial": False,
                "signup_date": SIGNUP_MS,
            },
            "agent": {"email": "v2@new.example.com"},
        },
        "v-3": {
            "custom": {
                "plan": "enterprise",
                "seats": 250,
                "is_trial": False,
                "signup_date": SIGNUP_MS,
            },
            "agent": {"email": "v-3@example.com"},
        },
    }


def test_values_are_sent_in_the_types_pendo_declares_for_their_fields(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    create(
        sqlite_url,
        "visitors",
        Column("id", Text),
        Column("seats", Text),  # number in Pendo
        Column("is_trial", Integer),  # boolean in Pendo
        Column("signup_date", Text),  # time in Pendo
        Column("updated_at", DateTime),
        rows=[
            {
                "id": "v-1",
                "seats": "42",
                "is_trial": 1,
                "signup_date": "2026-01-15T09:30:00Z",
                "updated_at": at(sync_day, 8),
            },
            {
                "id": "v-2",
                "seats": "7.5",
                "is_trial": 0,
                "signup_date": "1768469400000",
                "updated_at": at(sync_day, 9),
            },
        ],
    )
    spec = SyncSpec(
        name="typed_visitors",
        object_type="visitor_metadata",
        source=VISITORS.source,
        mapping={
            "id": "visitorId",
            "seats": "seats",
            "is_trial": "is_trial",
            "signup_date": "signup_date",
        },
    )

    run = materialize_sync(spec, sync_day)

    assert run.result.success
    [custom] = [r["body"] for r in sandbox.state()["requests"] if r["path"] == CUSTOM]
    assert custom == [
        {
            "visitorId": "v-1",
            "values": {"seats": 42, "is_trial": True, "signup_date": SIGNUP_MS},
        },
        {
            "visitorId": "v-2",
            "values": {"seats": 7.5, "is_trial": False, "signup_date": SIGNUP_MS},
        },
    ]


@pytest.mark.usefixtures("visitor_rows")
def test_visitor_partition_reads_the_schema_then_sends_custom_then_agent_values(
    materialize_sync: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    materialize_sync(VISITORS, sync_day)

    requests = sandbox.state()["requests"]
    assert [(r["method"], r["path"], r["query"]) for r in requests] == [
        ("GET", SCHEMA, {}),
        ("POST", CUSTOM, {"create": "true"}),
        ("POST", AGENT, {"create": "true"}),
    ]


@pytest.mark.usefixtures("visitor_rows")
def test_pendo_asset_metadata_accounts_for_every_row_read(
    materialize_sync: Any, sync_day: date
) -> None:
    run = materialize_sync(VISITORS, sync_day)

    metadata = run.metadata("pendo")
    assert {k: metadata[k] for k in ("dagster/row_count", "sent", "failed", "skipped")} == {
        "dagster/row_count": 4,
        "sent": 3,
        "failed": 0,
        "skipped": 1,  # v-2's earlier row, superseded by its later one
    }
    assert (
        metadata["dagster/row_count"] == metadata["sent"] + metadata["failed"] + metadata["skipped"]
    )
    assert metadata["retried"] == 0
    assert metadata["skipped_unchanged"] == 0
    assert metadata["requests"] == 3  # the schema read, then one request per metadata group
    assert metadata["failures"] == "No failed rows."
    assert isinstance(metadata["duration_seconds"], float)
    assert isinstance(metadata["records_per_second"], float)
    assert "warnings" not in metadata


@pytest.mark.usefixtures("visitor_rows")
def test_warehouse_asset_reports_the_rows_of_its_day_and_no_customer_data(
    materialize_sync: Any, sync_day: date, tmp_path: Any
) -> None:
    run = materialize_sync(VISITORS, sync_day)

    metadata = run.metadata("warehouse")
    assert metadata["dagster/row_count"] == 4
    assert "preview" not in metadata
    assert "@example.com" not in repr(run.result.all_events)


@pytest.mark.usefixtures("visitor_rows")
def test_warehouse_asset_without_a_preview_reads_the_ids_alone(
    materialize_sync: Any, sync_day: date, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting and checking the ids needs no other column: none is loaded (a push reads
    the mapped ones, then)."""
    read: list[list[str]] = []
    stream = database_resources.stream_partition

    def recorded(engine: Any, source: Any, columns: list[str], *args: Any, **kwargs: Any) -> Any:
        read.append(list(columns))
        return stream(engine, source, columns, *args, **kwargs)

    monkeypatch.setattr(database_resources, "stream_partition", recorded)
    run = materialize_sync(VISITORS, sync_day)

    assert run.metadata("warehouse")["dagster/row_count"] == 4
    assert read == [["id"], VISITORS.mapped]


@pytest.mark.usefixtures("visitor_rows")
def test_warehouse_asset_shows_a_preview_when_the_sync_asks_for_one(
    materialize_sync: Any, sync_day: date
) -> None:
    run = materialize_sync(dataclasses.replace(VISITORS, preview_rows=5), sync_day)

    preview = run.metadata("warehouse")["preview"].splitlines()
    assert preview[0] == "| id | plan | seats | is_trial | signup_date | email | updated_at |"
    assert [line.split(" | ")[0] for line in preview[2:]] == ["| v-1", "| v-2", "| v-3", "| v-2"]


@pytest.mark.usefixtures("visitor_rows")
def test_both_assets_materialize_the_requested_partition(
    materialize_sync: Any, sync_day: date
) -> None:
    run = materialize_sync(VISITORS, sync_day)

    for materialization in run.result.get_asset_materialization_events():
        assert materialization.partition == sync_day.isoformat()
    assert sorted(
        m.asset_key.to_user_string() for m in run.result.get_asset_materialization_events()
    ) == ["pendo/visitors_to_pendo", "warehouse/visitors_to_pendo"]


def test_an_empty_partition_materializes_with_zero_rows_and_sends_nothing(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    visitors_table(sqlite_url, [visitor("v-old", at(sync_day - timedelta(days=5), 12))])

    run = materialize_sync(VISITORS, sync_day)

    assert run.result.success
    metadata = run.metadata("pendo")
    assert (metadata["dagster/row_count"], metadata["sent"], metadata["requests"]) == (0, 0, 0)
    assert sandbox.state()["requests"] == []


# -- update mode -------------------------------------------------------------------------------


def sandbox_client(sandbox: SandboxServer) -> httpx.Client:
    """A plain client carrying the sandbox's integration key, to set Pendo up."""
    return httpx.Client(
        base_url=sandbox.url,
        headers={"x-pendo-integration-key": sandbox.config.integration_key},
        timeout=10,
    )


def test_update_mode_skips_ids_pendo_does_not_know_as_not_in_pendo(
    materialize_sync: Any,
    sandbox: SandboxServer,
    sqlite_url: str,
    sync_day: date,
    stored_failures: Any,
) -> None:
    visitors_table(
        sqlite_url,
        [
            visitor("v-known", at(sync_day, 8), plan="pro"),
            visitor("v-unknown", at(sync_day, 9), plan="pro"),
        ],
    )
    spec = SyncSpec(
        name="visitor_updates",
        object_type="visitor_metadata",
        mode="update",
        source=VISITORS.source,
        mapping={"id": "visitorId", "plan": "plan"},
        max_failure_rate=0.5,
    )
    with sandbox_client(sandbox) as client:  # v-known exists in Pendo, with another plan
        client.post(
            "/api/v1/metadata/visitor/custom/value",
            params={"create": "true"},
            json=[{"visitorId": "v-known", "values": {"plan": "starter"}}],
        ).raise_for_status()

    run = materialize_sync(spec, sync_day)

    assert run.result.success
    assert sandbox.state(requests=False)["metadata"]["visitor"] == {
        "v-known": {"custom": {"plan": "pro"}, "agent": {}}
    }
    metadata = run.metadata("pendo")
    assert (metadata["sent"], metadata["failed"], metadata["skipped"]) == (1, 0, 1)
    assert metadata["not_in_pendo"] == 1
    assert metadata["failures"] == "No failed rows."
    assert stored_failures(sync_name="visitor_updates") == []
    # After the set-up write: the schema read, then one update, without create.
    _, schema_read, update = sandbox.state()["requests"]
    assert (schema_read["method"], schema_read["path"]) == ("GET", SCHEMA)
    assert (update["method"], update["path"], update["query"]) == ("POST", CUSTOM, {})


def test_the_agent_request_carries_only_the_rows_whose_custom_values_pendo_accepted(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    visitors_table(
        sqlite_url,
        [
            visitor("v-known", at(sync_day, 8), plan="pro"),
            visitor("v-unknown", at(sync_day, 9), plan="pro"),
        ],
    )
    spec = SyncSpec(
        name="visitor_updates",
        object_type="visitor_metadata",
        mode="update",
        source=VISITORS.source,
        mapping={"id": "visitorId", "plan": "plan", "email": "agent.email"},
        max_failure_rate=0.5,
    )
    with sandbox_client(sandbox) as client:  # only v-known exists in Pendo
        client.post(
            "/api/v1/metadata/visitor/custom/value",
            params={"create": "true"},
            json=[{"visitorId": "v-known", "values": {"plan": "starter"}}],
        ).raise_for_status()

    run = materialize_sync(spec, sync_day)

    assert run.result.success
    _, _, custom, agent = sandbox.state()["requests"]  # after the set-up write and the schema
    assert [v["visitorId"] for v in custom["body"]] == ["v-known", "v-unknown"]
    assert (agent["path"], agent["body"]) == (
        AGENT,
        [{"visitorId": "v-known", "values": {"email": "v-known@example.com"}}],
    )


# -- change detection: pendo_sync_state ----------------------------------------------------------


@pytest.fixture
def materialize_with_config(sync_resources: Any) -> Any:
    """``materialize_with_config(spec, day, config)``: like ``materialize_sync``, with ``config``
    as the run config of the ``pendo/<name>`` step."""

    def materialize(spec: SyncSpec, day: date, config: dict[str, Any]) -> SyncMaterialization:
        result = dg.materialize(
            build_sync_assets(spec, daily_partitions(day - timedelta(days=10))),
            resources=sync_resources(),
            partition_key=day.isoformat(),
            run_config={"ops": {f"pendo__{spec.name}": {"config": config}}},
            raise_on_error=False,
        )
        return SyncMaterialization(spec, day.isoformat(), result)

    return materialize


def sync_state(state_url: str, sync_name: str, keys: list[str]) -> tuple[int, list[str]]:
    """How many records ``pendo_sync_state`` holds for the sync, and which of ``keys``."""
    engine = sa.create_engine(state_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT record_key FROM pendo_sync_state WHERE sync_name = :s"),
                {"s": sync_name},
            ).scalars()
            recorded = list(found)
        return len(recorded), sorted(set(recorded) & set(keys))
    finally:
        engine.dispose()


def counts(metadata: dict[str, Any]) -> dict[str, Any]:
    keys = ("dagster/row_count", "sent", "failed", "skipped", "skipped_unchanged", "requests")
    return {k: metadata[k] for k in keys}


@pytest.mark.usefixtures("visitor_rows")
def test_the_pendo_asset_records_each_record_pendo_accepted_in_the_sync_state(
    materialize_sync: Any, state_url: str, sync_day: date
) -> None:
    run = materialize_sync(VISITORS, sync_day)

    assert run.result.success
    everyone = ["v-before", "v-1", "v-2", "v-3", "v-after"]
    assert sync_state(state_url, VISITORS.name, everyone) == (3, ["v-1", "v-2", "v-3"])


@pytest.mark.usefixtures("visitor_rows")
def test_a_second_run_of_the_partition_skips_every_unchanged_row_without_a_request(
    materialize_sync: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    first = materialize_sync(VISITORS, sync_day)
    requests_of_first = sandbox.state(requests=False)["counters"]["requests"]

    second = materialize_sync(VISITORS, sync_day)

    assert (first.result.success, second.result.success) == (True, True)
    assert requests_of_first == 3
    assert counts(second.metadata("pendo")) == {
        "dagster/row_count": 4,
        "sent": 0,
        "failed": 0,
        "skipped": 4,  # v-2's superseded row, and the three rows Pendo has as they are
        "skipped_unchanged": 3,
        "requests": 0,  # nothing to send: not even the schema is read
    }
    assert sandbox.state(requests=False)["counters"]["requests"] == requests_of_first


@pytest.mark.usefixtures("visitor_rows")
def test_a_second_run_of_the_partition_sends_only_the_rows_that_changed(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    materialize_sync(VISITORS, sync_day)
    requests_of_first = len(sandbox.state()["requests"])
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE visitors SET plan = 'team' WHERE id = 'v-3'")
    engine.dispose()

    run = materialize_sync(VISITORS, sync_day)

    assert counts(run.metadata("pendo")) == {
        "dagster/row_count": 4,
        "sent": 1,
        "failed": 0,
        "skipped": 3,
        "skipped_unchanged": 2,
        "requests": 3,
    }
    requests = sandbox.state()["requests"][requests_of_first:]
    assert [(r["path"], r["body"]) for r in requests] == [
        (SCHEMA, None),
        (
            CUSTOM,
            [
                {
                    "visitorId": "v-3",
                    "values": {
                        "plan": "team",
                        "seats": 250,
                        "is_trial": False,
                        "signup_date": SIGNUP_MS,
                    },
                }
            ],
        ),
        (AGENT, [{"visitorId": "v-3", "values": {"email": "v-3@example.com"}}]),
    ]


@pytest.mark.usefixtures("visitor_rows")
def test_a_full_refresh_resends_every_row_pendo_already_has(
    materialize_sync: Any, materialize_with_config: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    materialize_sync(VISITORS, sync_day)
    sandbox.reset()  # Pendo loses the visitors; the sync state still says it has them

    run = materialize_with_config(VISITORS, sync_day, {"full_refresh": True})

    assert run.result.success
    assert counts(run.metadata("pendo")) == {
        "dagster/row_count": 4,
        "sent": 3,
        "failed": 0,
        "skipped": 1,  # only v-2's superseded row
        "skipped_unchanged": 0,
        "requests": 3,
    }
    assert sorted(sandbox.state(requests=False)["metadata"]["visitor"]) == ["v-1", "v-2", "v-3"]


# -- account metadata ----------------------------------------------------------------------------


@pytest.mark.usefixtures("account_rows")
def test_account_partition_writes_the_accounts_whose_utc_day_it_is(
    materialize_sync: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    run = materialize_sync(ACCOUNTS, sync_day)

    assert run.result.success
    assert sandbox.state(requests=False)["metadata"]["account"] == {
        "a-1": {"custom": {"name": "Acme", "tier": "gold", "arr": 120000.5}, "agent": {}},
        # 01:00 at +02:00 on the next day is 23:00 UTC on this one
        "a-2": {"custom": {"name": "Globex", "tier": "silver", "arr": None}, "agent": {}},
    }
    metadata = run.metadata("pendo")
    # Two requests: the account schema read and one custom request (accounts have no agent).
    assert (metadata["dagster/row_count"], metadata["sent"], metadata["requests"]) == (2, 2, 2)


# -- track events --------------------------------------------------------------------------------


@pytest.mark.usefixtures("event_rows")
def test_event_partition_sends_each_row_of_the_day_as_a_track_event(
    materialize_sync: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    run = materialize_sync(EVENTS, sync_day)

    assert run.result.success
    assert track_bodies(sandbox) == [
        {
            "type": "track",
            "event": "Report Exported",
            "visitorId": "v-1",
            "accountId": "a-1",
            "timestamp": epoch_ms(at(sync_day, 10)) + 123,
            "properties": {"format": "csv", "rows": 1200, "feature": "reports"},
            "context": {
                "ip": "203.0.113.7",
                "userAgent": "Mozilla/5.0",
                "url": "https://app.example.com/reports/1",
            },
        },
        {
            "type": "track",
            "event": "Signed In",
            "visitorId": "v-2",
            "timestamp": epoch_ms(at(sync_day, 11)),
            "properties": {"feature": None},
            "context": {},
        },
        {
            "type": "track",
            "event": "Invite Sent",
            "visitorId": "v-3",
            "accountId": "a-2",
            "timestamp": epoch_ms(at(sync_day, 23, 59)),
            "properties": {"feature": "team"},
            "context": {"ip": "198.51.100.1"},
        },
    ]
    assert len(sandbox.state(requests=False)["events"]) == 3


@pytest.mark.usefixtures("event_rows")
def test_event_partition_metadata_counts_one_request_per_event(
    materialize_sync: Any, sync_day: date
) -> None:
    run = materialize_sync(EVENTS, sync_day)

    metadata = run.metadata("pendo")
    counts = ("dagster/row_count", "sent", "failed", "skipped", "retried", "requests")
    assert {k: metadata[k] for k in counts} == {
        "dagster/row_count": 3,
        "sent": 3,
        "failed": 0,
        "skipped": 0,
        "retried": 0,
        "requests": 3,
    }


@pytest.mark.usefixtures("event_rows")
def test_an_event_partition_reads_no_metadata_schema(
    materialize_sync: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    materialize_sync(EVENTS, sync_day)

    assert [(r["method"], r["path"]) for r in sandbox.state()["requests"]] == [
        ("POST", "/data/track")
    ] * 3


@pytest.mark.usefixtures("event_rows")
def test_a_second_run_of_an_event_partition_sends_no_event_twice(
    materialize_sync: Any, sandbox: SandboxServer, sync_day: date
) -> None:
    materialize_sync(EVENTS, sync_day)

    run = materialize_sync(EVENTS, sync_day)

    assert run.result.success
    metadata = run.metadata("pendo")
    assert counts(metadata) == {
        "dagster/row_count": 3,
        "sent": 0,
        "failed": 0,
        "skipped": 3,
        "skipped_unchanged": 3,  # delivered by the first run
        "requests": 0,
    }
    assert len(sandbox.state(requests=False)["events"]) == 3


def test_events_older_than_seven_days_are_sent_and_warned_about(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str
) -> None:
    old_day = datetime.now(UTC).date() - timedelta(days=9)
    create(
        sqlite_url,
        "events",
        Column("visitor_id", Text),
        Column("event_name", Text),
        Column("occurred_at", BigInteger),
        rows=[{"visitor_id": "v-1", "event_name": "Old", "occurred_at": epoch_ms(at(old_day, 6))}],
    )
    spec = SyncSpec(
        name="old_events",
        object_type="track_events",
        source=SourceSpec(partition_column="occurred_at", table="events"),
        mapping={"visitor_id": "visitorId", "event_name": "event", "occurred_at": "timestamp"},
    )

    run = materialize_sync(spec, old_day)

    assert run.result.success
    assert [e["event"] for e in sandbox.state(requests=False)["events"]] == ["Old"]
    metadata = run.metadata("pendo")
    assert metadata["sent"] == 1
    assert metadata["warnings"] == (
        "- 1 event(s) are older than Pendo's 7-day processing window: Pendo accepts them but "
        "its regular jobs may not process them"
    )


@pytest.mark.usefixtures("visitor_rows")
def test_the_push_alone_reads_the_rows_the_warehouse_holds_now(
    materialize_sync: Any,
    sync_resources: Any,
    sandbox: SandboxServer,
    sqlite_url: str,
    sync_day: date,
) -> None:
    materialize_sync(VISITORS, sync_day)
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE visitors SET plan = 'enterprise' WHERE id = 'v-3'")
    engine.dispose()
    [_, push] = build_sync_assets(VISITORS, daily_partitions(sync_day - timedelta(days=10)))

    result = dg.materialize([push], resources=sync_resources(), partition_key=sync_day.isoformat())

    assert result.success
    assert sandbox.state(requests=False)["metadata"]["visitor"]["v-3"]["custom"]["plan"] == (
        "enterprise"
    )


def test_a_partition_pushed_in_chunks_of_two_rows_sends_each_ids_latest_row_once(
    materialize_sync: Any,
    sync_resources: Any,
    sandbox: SandboxServer,
    sqlite_url: str,
    sync_day: date,
) -> None:
    rows = [visitor(f"v-{i}", at(sync_day, 1), plan="old") for i in range(5)]
    rows += [visitor(f"v-{i}", at(sync_day, 9), plan=f"new-{i}") for i in range(5)]
    visitors_table(sqlite_url, rows)
    resources = sync_resources()
    resources["warehouse"] = resources["warehouse"].model_copy(update={"chunk_rows": 2})

    run = materialize_sync(VISITORS, sync_day, resources=resources)

    assert run.result.success
    stored = sandbox.state()["metadata"]["visitor"]
    assert {vid: stored[vid]["custom"]["plan"] for vid in stored} == {
        f"v-{i}": f"new-{i}" for i in range(5)
    }
    custom = [r for r in sandbox.state()["requests"] if r["path"] == CUSTOM]
    assert sum(len(r["body"]) for r in custom) == 5
    metadata = run.metadata("pendo")
    assert {k: metadata[k] for k in ("dagster/row_count", "sent", "failed", "skipped")} == {
        "dagster/row_count": 10,
        "sent": 5,
        "failed": 0,
        "skipped": 5,
    }
    assert run.metadata("warehouse")["dagster/row_count"] == 10

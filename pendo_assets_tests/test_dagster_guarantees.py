"""The delivery guarantees through `dagster.materialize`, as daily operation meets them:
concurrent runs of one partition, a second destination, renamed properties, lost answers,
padded keys, update mode and first runs on an empty state database. SQLite and PostgreSQL state.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, DateTime, Text

from pendo_assets.defs.database_resources import SyncStateResource
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.spec import SourceSpec, SyncSpec
from pendo_assets_tests.conftest import SyncMaterialization, require_duckdb

EVENTS = SyncSpec(
    name="events_to_pendo",
    object_type="track_events",
    source=SourceSpec(partition_column="occurred_at", table="events"),
    mapping={
        "visitor_id": "visitorId",
        "event_name": "event",
        "occurred_at": "timestamp",
        "plan": "plan",
    },
)
VISITORS = SyncSpec(
    name="visitors_to_pendo",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan"},
)
CUSTOM = "/api/v1/metadata/visitor/custom/value"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty state database: a SQLite file, or a PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sync_state.db'}"
    schema = request.getfixturevalue("pg_schema")
    return f"{request.getfixturevalue('postgres_url')}?options=-csearch_path%3D{schema}"


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second))


def events_table(url: str, day: date, count: int, plan: str = "pro") -> None:
    """`count` visitors with one event each on `day` (no pacing waits)."""
    rows = [
        {
            "visitor_id": f"v-{i}",
            "event_name": "Exported",
            "occurred_at": at(day, 10, i // 60, i % 60),
            "plan": plan,
        }
        for i in range(count)
    ]
    _create(url, "events", rows, "visitor_id", "event_name", "plan", stamp="occurred_at")


def visitors_table(url: str, day: date, ids: list[str]) -> None:
    rows = [{"id": v, "plan": "pro", "updated_at": at(day, 9)} for v in ids]
    _create(url, "visitors", rows, "id", "plan", stamp="updated_at")


def _create(url: str, name: str, rows: list[dict[str, Any]], *texts: str, stamp: str) -> None:
    engine = sa.create_engine(url)
    table = sa.Table(
        name, sa.MetaData(), *(Column(t, Text) for t in texts), Column(stamp, DateTime)
    )
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert(), rows)
    engine.dispose()


def concurrently(*calls: Any) -> list[Any]:
    """Run the calls at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_concurrent_runs_of_one_event_partition_deliver_each_event_once(
    sandbox: SandboxServer, materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    events_table(sqlite_url, sync_day, 120)

    first, second = concurrently(
        lambda: materialize_sync(EVENTS, sync_day), lambda: materialize_sync(EVENTS, sync_day)
    )

    assert first.result.success and second.result.success
    stored = Counter(e["visitorId"] for e in sandbox.state(requests=False)["events"])
    assert stored == Counter({f"v-{i}": 1 for i in range(120)})
    assert sandbox.state()["counters"]["pacing_429"] == 0
    assert sorted([first.metadata()["sent"], second.metadata()["sent"]]) == [0, 120]


def test_two_concurrent_runs_of_one_metadata_partition_send_each_record_once(
    sandbox: SandboxServer, materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors_table(sqlite_url, sync_day, [f"v-{i}" for i in range(200)])

    first, second = concurrently(
        lambda: materialize_sync(VISITORS, sync_day), lambda: materialize_sync(VISITORS, sync_day)
    )

    assert first.result.success and second.result.success
    sent = [
        v["visitorId"]
        for r in sandbox.state()["requests"]
        if r["path"] == CUSTOM
        for v in r["body"]
    ]
    assert Counter(sent) == Counter({f"v-{i}": 1 for i in range(200)})
    assert sorted(
        [first.metadata()["skipped_unchanged"], second.metadata()["skipped_unchanged"]]
    ) == [0, 200]


def test_concurrent_first_runs_on_an_empty_state_database_both_succeed(
    sandbox: SandboxServer, materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors_table(sqlite_url, sync_day, ["v-1", "v-2"])
    events_table(sqlite_url, sync_day, 5)

    runs = concurrently(
        lambda: materialize_sync(VISITORS, sync_day), lambda: materialize_sync(EVENTS, sync_day)
    )

    assert [r.result.success for r in runs] == [True, True]
    assert [r.metadata()["sent"] for r in runs] == [2, 5]


@pytest.fixture
def production(sandbox_config: Any) -> Iterator[SandboxServer]:
    """A second Pendo (same made-up credentials, another address)."""
    with SandboxServer(sandbox_config) as server:
        yield server


def test_switching_destination_with_one_state_sends_everything_there_and_nothing_back(
    sandbox: SandboxServer,
    production: SandboxServer,
    materialize_sync: Any,
    sqlite_url: str,
    sync_day: date,
) -> None:
    visitors_table(sqlite_url, sync_day, [f"v-{i}" for i in range(7)])

    trial = materialize_sync(VISITORS, sync_day)
    prod = materialize_sync(VISITORS, sync_day, base_url=production.url)
    back = materialize_sync(VISITORS, sync_day)

    assert [trial.metadata()["sent"], prod.metadata()["sent"], back.metadata()["sent"]] == [7, 7, 0]
    assert len(production.state(requests=False)["metadata"]["visitor"]) == 7
    assert trial.metadata()["destination"].startswith(sandbox.url + "#")
    assert prod.metadata()["destination"].startswith(production.url + "#")


def test_renaming_a_property_after_delivery_sends_no_event_again(
    sandbox: SandboxServer, materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    events_table(sqlite_url, sync_day, 30)
    first = materialize_sync(EVENTS, sync_day)
    renamed_spec = SyncSpec(
        **{**EVENTS.__dict__, "mapping": {**EVENTS.mapping, "plan": "subscription"}}
    )
    renamed = materialize_sync(renamed_spec, sync_day)

    assert first.metadata()["sent"] == 30
    assert len(sandbox.state(requests=False)["events"]) == 30
    metadata = renamed.metadata()
    assert (metadata["sent"], metadata["skipped"], metadata["changed_after_delivery"]) == (
        0,
        30,
        30,
    )


@pytest.mark.parametrize("policy", ["resend", "skip"])
def test_lost_answers_are_counted_in_doubt_and_bound_the_duplicates(
    policy: str,
    sandbox: SandboxServer,
    materialize_sync: Any,
    sqlite_url: str,
    sync_day: date,
    stored_failures: Any,
) -> None:
    events_table(sqlite_url, sync_day, 40)
    spec = SyncSpec(**{**EVENTS.__dict__, "in_doubt": policy})
    # Two in a row: three would read as Pendo being down, which stops the sync.
    sandbox.script_faults(
        [
            {"drop": True, "after_effect": True, "path": "/data/track"},
            {"status": 502, "after_effect": True, "path": "/data/track"},
        ]
    )

    run = materialize_sync(spec, sync_day)

    metadata = run.metadata()
    stored = Counter(e["visitorId"] for e in sandbox.state(requests=False)["events"])
    duplicates = sum(stored.values()) - len(stored)
    assert set(stored) == {f"v-{i}" for i in range(40)}  # Pendo kept every event
    assert metadata["in_doubt"] == 2
    assert duplicates <= metadata["in_doubt"]
    if policy == "resend":
        assert (metadata["sent"], metadata["failed"], duplicates) == (40, 0, 2)
    else:
        assert (metadata["sent"], metadata["failed"], duplicates) == (38, 2, 0)
        failures = stored_failures(sync_name=spec.name)
        assert len(failures) == 2
        assert all("in_doubt: skip" in f["reason"] and not f["retryable"] for f in failures)


def test_update_mode_reports_ids_not_in_pendo_apart_from_failures(
    sandbox: SandboxServer, materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors_table(sqlite_url, sync_day, ["known", "stranger"])
    upsert_first = SyncSpec(**{**VISITORS.__dict__, "name": "seed"})
    # Pendo knows `known` only: another sync created it.
    seed_url = sqlite_url.replace("warehouse.db", "seed.db")
    visitors_table(seed_url, sync_day, ["known"])
    materialize_sync(upsert_first, sync_day, warehouse_url=seed_url)
    update = SyncSpec(**{**VISITORS.__dict__, "mode": "update"})

    run = materialize_sync(update, sync_day)

    metadata = run.metadata()
    assert (metadata["sent"], metadata["failed"], metadata["not_in_pendo"]) == (1, 0, 1)
    assert run.check("failure_rate").passed


@pytest.mark.parametrize("padding", ["\n", "  ", "\r\n"])
def test_a_padded_integration_key_works_and_is_never_printed(
    padding: str,
    sandbox: SandboxServer,
    integration_key: str,
    materialize_sync: Any,
    sqlite_url: str,
    sync_day: date,
) -> None:
    visitors_table(sqlite_url, sync_day, ["v-1"])

    run = materialize_sync(VISITORS, sync_day, integration_key=integration_key + padding)

    assert run.result.success
    assert run.metadata()["sent"] == 1
    assert integration_key not in _everything_logged(run)


def test_a_key_with_a_control_character_fails_naming_the_variable_never_the_value(
    sandbox: SandboxServer, materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors_table(sqlite_url, sync_day, ["v-1"])
    bad_key = "made-up-key\x07secret-part"

    run = materialize_sync(VISITORS, sync_day, integration_key=bad_key)

    assert not run.result.success
    description = run.step_failure("pendo").user_failure_data.description
    assert "PENDO_INTEGRATION_KEY" in description
    logged = _everything_logged(run)
    assert "made-up-key" not in logged and "secret-part" not in logged
    assert [r for r in sandbox.state()["requests"] if r["path"] == CUSTOM] == []


def _everything_logged(run: SyncMaterialization) -> str:
    """Every event of the run as text: messages, metadata, failure descriptions."""
    return "\n".join(repr(event) for event in run.result.all_events)


def test_a_state_database_that_takes_no_writes_is_refused_before_anything_is_sent(
    sandbox: SandboxServer,
    sync_resources: Any,
    materialize_sync: Any,
    sqlite_url: str,
    sync_day: date,
    tmp_path: Any,
) -> None:
    visitors_table(sqlite_url, sync_day, ["v-1"])
    read_only = tmp_path / "read_only_state.db"
    sa.create_engine(f"sqlite:///{read_only}").connect().close()  # an empty database file
    resources = sync_resources()
    resources["sync_state"] = SyncStateResource(url=f"sqlite:///file:{read_only}?mode=ro&uri=true")

    run = materialize_sync(VISITORS, sync_day, resources=resources)

    assert not run.result.success
    description = run.step_failure("pendo").user_failure_data.description
    assert "cannot write the sync state database" in description
    assert "nothing was sent" in description
    assert [r for r in sandbox.state()["requests"] if r["path"] == CUSTOM] == []


def test_a_state_database_of_an_unsupported_kind_is_refused_before_anything_is_sent(
    sandbox: SandboxServer,
    sync_resources: Any,
    materialize_sync: Any,
    sqlite_url: str,
    sync_day: date,
    tmp_path: Any,
) -> None:
    require_duckdb()
    visitors_table(sqlite_url, sync_day, ["v-1"])
    resources = sync_resources()
    resources["sync_state"] = SyncStateResource(url=f"duckdb:///{tmp_path / 'state.duckdb'}")

    run = materialize_sync(VISITORS, sync_day, resources=resources)

    assert not run.result.success
    description = run.step_failure("pendo").user_failure_data.description
    assert "the sync state database must be SQLite or PostgreSQL, not duckdb" in description
    assert sandbox.state()["requests"] == []

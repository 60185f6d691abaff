"""Delivery guarantees in daily operation, at the engine: concurrent runs, destinations, event
identity, old state, long keys, internal errors. On SQLite and PostgreSQL state."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from pendo_assets.client import PendoClient
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.decide.change_detection import (
    ALREADY_DELIVERED,
    CHANGED_AFTER_DELIVERY,
    EVENT_ID_REUSED,
    UNCHANGED,
)
from pendo_assets.sync.decide.record_keys import legacy_event_key
from pendo_assets.sync.deliver.outcome import SyncAborted
from pendo_assets.sync.engine import SyncOptions, destination_of, run_sync
from pendo_assets.sync.record.partition_lease import LeaseSettings, PartitionBusy, PartitionLease
from pendo_assets.sync.record.state_store import StateStore
from pendo_assets.sync.results import SyncReport
from pendo_assets.sync.spec import SourceSpec, SyncSpec
from pendo_assets_tests.state_databases import state_engine_for

PARTITION = "2026-11-02"
NOW_MS = 1_794_000_000_000
CUSTOM = "/api/v1/metadata/visitor/custom/value"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engines(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[list[sa.Engine]]:
    """Engines on one state database, SQLite or a PostgreSQL schema: one per "process"."""
    made: list[sa.Engine] = []

    def make() -> sa.Engine:
        engine = state_engine_for(request, tmp_path)
        made.append(engine)
        return engine

    make()
    make()
    yield made
    for engine in made:
        engine.dispose()


@pytest.fixture
def engine(engines: list[sa.Engine]) -> sa.Engine:
    return engines[0]


@pytest.fixture
def state(engine: sa.Engine) -> StateStore:
    return StateStore(engine)


@pytest.fixture
def other_state(engines: list[sa.Engine]) -> StateStore:
    """Another process's store on the same database: its own engine, no shared locks."""
    return StateStore(engines[1])


def events(extra: dict[str, str] | None = None) -> SyncSpec:
    mapping = {"visitor": "visitorId", "name": "event", "at": "timestamp"}
    mapping.update(extra or {})
    return SyncSpec(
        name="events",
        object_type="track_events",
        source=SourceSpec(partition_column="at", table="events"),
        mapping=mapping,
    )


def visitors() -> SyncSpec:
    return SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan"},
    )


def event_frame(n: int, **extra: list[Any]) -> pd.DataFrame:
    data: dict[str, list[Any]] = {
        "visitor": [f"v-{i}" for i in range(n)],
        "name": ["Exported"] * n,
        "at": [NOW_MS - 1000 * i for i in range(n)],
    }
    data.update(extra)
    return pd.DataFrame(data, dtype=object)


def visitor_frame(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "plan": ["pro"] * len(ids)}, dtype=object)


def run(
    spec: SyncSpec,
    frame: pd.DataFrame,
    client: PendoClient,
    state: StateStore,
    run_id: str = "run-1",
    **options: Any,
) -> SyncReport:
    return run_sync(
        spec,
        frame,
        client,
        partition_key=PARTITION,
        options=SyncOptions(max_in_flight=4, now_ms=NOW_MS, run_id=run_id, **options),
        state=state,
    )


def events_lease(
    store: StateStore, client: PendoClient, holder: str, ttl_seconds: float = 120.0
) -> PartitionLease:
    """A lease on the events partition, as another run would take it."""
    return PartitionLease(
        store,
        destination=destination_of(events(), client),
        sync_name="events",
        partition_key=PARTITION,
        holder=holder,
        settings=LeaseSettings(ttl_seconds=ttl_seconds),
    )


# -- one run per partition ---------------------------------------------------------------------


def test_two_concurrent_runs_of_one_event_partition_deliver_each_event_once(
    sandbox: SandboxServer, client: PendoClient, engine: sa.Engine, other_state: StateStore
) -> None:
    frame = event_frame(40)
    reports: dict[str, SyncReport] = {}
    barrier = threading.Barrier(2)

    def one_run(name: str, store: StateStore) -> None:
        barrier.wait()
        reports[name] = run(events(), frame, client, store, run_id=name)

    threads = [
        threading.Thread(target=one_run, args=("schedule", StateStore(engine))),
        threading.Thread(target=one_run, args=("sensor", other_state)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = sandbox.state(requests=False)["events"]
    assert len(stored) == 40
    assert sorted(e["visitorId"] for e in stored) == sorted(f"v-{i}" for i in range(40))
    assert sandbox.state()["counters"]["pacing_429"] == 0
    assert sorted(r.sent for r in reports.values()) == [0, 40]
    later = min(reports.values(), key=lambda r: r.sent)
    assert later.skipped_reasons == {ALREADY_DELIVERED: 40}


def test_two_concurrent_runs_of_one_metadata_partition_send_each_record_once(
    sandbox: SandboxServer, client: PendoClient, engine: sa.Engine, other_state: StateStore
) -> None:
    frame = visitor_frame([f"v-{i}" for i in range(300)])
    barrier = threading.Barrier(2)

    finished: list[str] = []

    def one_run(name: str, store: StateStore) -> None:
        barrier.wait()
        run(visitors(), frame, client, store, run_id=name)
        finished.append(name)

    threads = [
        threading.Thread(target=one_run, args=("a", StateStore(engine))),
        threading.Thread(target=one_run, args=("b", other_state)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(finished) == ["a", "b"]  # both runs ended without an error
    sent = [v for r in sandbox.state()["requests"] if r["path"] == CUSTOM for v in r["body"]]
    assert sorted(v["visitorId"] for v in sent) == sorted(f"v-{i}" for i in range(300))


def test_a_run_waits_for_the_partition_then_fails_clearly_when_it_stays_taken(
    client: PendoClient, state: StateStore, other_state: StateStore
) -> None:
    with events_lease(other_state, client, "run-holding"), pytest.raises(PartitionBusy) as busy:
        run(events(), event_frame(3), client, state, lease=LeaseSettings(wait_seconds=0.5))

    assert "sync 'events' partition 2026-11-02 is being synced" in str(busy.value)
    assert "run-holding" in str(busy.value)
    assert "Nothing was sent by this run" in str(busy.value)


def test_a_lease_left_by_a_killed_run_expires_and_the_next_run_proceeds(
    sandbox: SandboxServer, client: PendoClient, state: StateStore, other_state: StateStore
) -> None:
    abandoned = events_lease(other_state, client, "run-killed", ttl_seconds=1.0).acquire()
    abandoned._stop.set()  # as a killed process: no renewal, no release

    report = run(
        events(),
        event_frame(3),
        client,
        state,
        lease=LeaseSettings(ttl_seconds=1.0, poll_seconds=0.2),
    )

    assert report.sent == 3
    assert len(sandbox.state(requests=False)["events"]) == 3


def test_a_run_whose_lease_was_taken_over_stops_before_recording(
    client: PendoClient, state: StateStore, other_state: StateStore
) -> None:
    stalled = events_lease(state, client, "run-stalled", ttl_seconds=0.3).acquire()
    stalled._stop.set()  # stalled: its renewals stop
    stalled._renewer.join()  # type: ignore[union-attr]
    threading.Event().wait(0.5)
    newer = events_lease(other_state, client, "run-newer").acquire()

    with pytest.raises(SyncAborted) as aborted:
        run_sync(
            events(),
            event_frame(2),
            client,
            partition_key=PARTITION,
            options=SyncOptions(max_in_flight=1, now_ms=NOW_MS, run_id="run-stalled"),
            state=state,
            lease=stalled,
        )
    newer.release()

    report = aborted.value.report
    assert "another run took the partition over" in str(aborted.value)
    # What went out could not be recorded: every such event counts as in doubt.
    assert report.rows == 2
    assert report.in_doubt == report.sent
    assert state.scope(stalled.destination, "events").count() == 0


def test_a_run_whose_renewer_found_the_lease_taken_sends_nothing_more(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    lease = events_lease(state, client, "run-late").acquire()
    lease.lost = True  # what the renewer sets when another run holds the partition

    with pytest.raises(SyncAborted) as aborted:
        run_sync(
            events(),
            event_frame(3),
            client,
            partition_key=PARTITION,
            options=SyncOptions(max_in_flight=1, now_ms=NOW_MS, run_id="run-late"),
            state=state,
            lease=lease,
        )
    lease.release()

    assert "another run took the partition over" in str(aborted.value)
    assert aborted.value.report.sent == 0
    assert sandbox.state(requests=False)["events"] == []


def test_the_renewer_notices_when_another_run_has_taken_the_partition(
    client: PendoClient, state: StateStore, engine: sa.Engine
) -> None:
    lease = events_lease(state, client, "run-slow", ttl_seconds=0.3).acquire()
    with engine.begin() as connection:  # another run took it over after an expiry
        connection.exec_driver_sql("UPDATE pendo_sync_leases SET token = 'theirs'")

    threading.Event().wait(0.6)
    lease.release()

    assert lease.lost


# -- destinations ------------------------------------------------------------------------------


@pytest.fixture
def production(sandbox_config: Any) -> Iterator[SandboxServer]:
    """A second Pendo: same credentials, another address."""
    with SandboxServer(sandbox_config) as server:
        yield server


def test_the_same_state_pointed_at_another_pendo_sends_everything_there_and_not_back(
    sandbox: SandboxServer,
    production: SandboxServer,
    integration_key: str,
    state: StateStore,
) -> None:
    frame = visitor_frame([f"v-{i}" for i in range(5)])
    with PendoClient(integration_key=integration_key, base_url=sandbox.url) as trial:
        first = run(visitors(), frame, trial, state)
    with PendoClient(integration_key=integration_key, base_url=production.url) as prod:
        second = run(visitors(), frame, prod, state)
    with PendoClient(integration_key=integration_key, base_url=sandbox.url) as trial:
        back = run(visitors(), frame, trial, state)

    assert (first.sent, second.sent, back.sent) == (5, 5, 0)
    assert sorted(production.state(requests=False)["metadata"]["visitor"]) == [
        f"v-{i}" for i in range(5)
    ]
    assert back.skipped_reasons == {UNCHANGED: 5}
    assert first.destination != second.destination
    assert integration_key not in (first.destination or "")


def test_another_credential_is_another_destination(
    sandbox: SandboxServer, track_event_secret: str, state: StateStore
) -> None:
    with PendoClient(track_event_secret=track_event_secret, base_url=sandbox.url) as client:
        first = run(events(), event_frame(2), client, state)
        trailing = PendoClient(track_event_secret=track_event_secret + "\n", base_url=sandbox.url)
        with trailing:
            same = run(events(), event_frame(2), trailing, state)

    assert first.sent == 2
    assert same.sent == 0  # a padded secret is the same credential, so the same destination
    assert destination_of(events(), client) != destination_of(
        events(), PendoClient(track_event_secret="another-secret", base_url=sandbox.url)
    )


def test_state_written_before_destinations_is_migrated_in_place(
    sandbox: SandboxServer, client: PendoClient, engine: sa.Engine
) -> None:
    frame = event_frame(3)
    bodies = [
        {
            "type": "track",
            "event": "Exported",
            "visitorId": f"v-{i}",
            "timestamp": NOW_MS - 1000 * i,
            "context": {},
        }
        for i in range(3)
    ]
    with engine.begin() as connection:  # the table as earlier versions created it
        connection.exec_driver_sql(
            "CREATE TABLE pendo_sync_state (sync_name VARCHAR(200) NOT NULL, "
            "record_key VARCHAR(512) NOT NULL, payload_hash VARCHAR(64) NOT NULL, "
            "payload TEXT, run_id VARCHAR(64) NOT NULL, accepted_at TIMESTAMP NOT NULL, "
            "PRIMARY KEY (sync_name, record_key))"
        )
        for body in bodies:
            connection.execute(
                sa.text(
                    "INSERT INTO pendo_sync_state VALUES ('events', :k, 'old', NULL, 'r0', "
                    "CURRENT_TIMESTAMP)"
                ),
                {"k": legacy_event_key(body)},
            )

    report = run(events(), frame, client, StateStore(engine))

    assert (report.sent, report.skipped_reasons) == (0, {ALREADY_DELIVERED: 3})
    assert sandbox.state(requests=False)["events"] == []
    columns = {c["name"] for c in sa.inspect(engine).get_columns("pendo_sync_state")}
    assert "destination" in columns
    with engine.connect() as connection:
        destinations = connection.execute(
            sa.text("SELECT DISTINCT destination FROM pendo_sync_state")
        ).scalars()
        assert list(destinations) == [destination_of(events(), client)]


# -- event identity ----------------------------------------------------------------------------


def test_renaming_a_property_after_delivery_sends_nothing_again(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    first = run(events({"plan": "plan"}), event_frame(4, plan=["pro"] * 4), client, state)
    renamed = run(events({"plan": "tier"}), event_frame(4, plan=["pro"] * 4), client, state)

    assert first.sent == 4
    assert len(sandbox.state(requests=False)["events"]) == 4
    assert (renamed.sent, renamed.skipped, renamed.changed_after_delivery) == (0, 4, 4)
    assert renamed.skipped_reasons == {CHANGED_AFTER_DELIVERY: 4}
    assert renamed.skipped_unchanged == 0


def test_a_new_event_beside_delivered_ones_still_goes_out(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    run(events(), event_frame(3), client, state)
    report = run(events({"plan": "plan"}), event_frame(4, plan=["x"] * 4), client, state)

    assert (report.sent, report.changed_after_delivery) == (1, 3)
    assert [e["visitorId"] for e in sandbox.state(requests=False)["events"]][-1] == "v-3"


def test_an_event_id_reused_with_other_content_fails_its_row(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    spec = events({"seq": "event_id"})
    run(spec, event_frame(2, seq=[1, 2]), client, state)
    next_day = event_frame(2, seq=[1, 2])
    next_day["name"] = "Purchased"
    report = run(spec, next_day, client, state)

    assert len(sandbox.state(requests=False)["events"]) == 2
    assert [(f.record_id, f.field, f.reason, f.retryable) for f in report.failures] == [
        ("v-0", "event_id", EVENT_ID_REUSED, False),
        ("v-1", "event_id", EVENT_ID_REUSED, False),
    ]
    assert (report.sent, report.failed, report.skipped) == (0, 2, 0)


# -- keys, errors ------------------------------------------------------------------------------


def test_record_keys_of_any_length_are_recorded(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    ids = ["x" * 600, "y" * 5000, "v-1"]
    first = run(visitors(), visitor_frame(ids), client, state)
    second = run(visitors(), visitor_frame(ids), client, state)

    assert (first.sent, second.sent, second.skipped_unchanged) == (3, 0, 3)


def test_a_state_database_error_before_sending_fails_every_row_with_the_reason(
    sandbox: SandboxServer, client: PendoClient, state: StateStore, engine: sa.Engine
) -> None:
    scope = state.scope(destination_of(visitors(), client), "visitors")
    with engine.begin() as connection:
        cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""  # and the view
        connection.exec_driver_sql(f"DROP TABLE pendo_sync_records{cascade}")
    state._migrated.add(scope.destination)  # the tables were checked earlier in this process

    with pytest.raises(SyncAborted) as aborted:
        run(visitors(), visitor_frame(["v-1", "v-2"]), client, state)

    report = aborted.value.report
    assert (report.rows, report.sent, report.failed) == (2, 0, 2)
    assert [f.record_id for f in report.failures] == ["v-1", "v-2"]
    assert all(f.reason.startswith("internal error: state database error") for f in report.failures)
    assert aborted.value.retryable
    assert [r for r in sandbox.state()["requests"] if r["path"] == CUSTOM] == []


# -- answers lost in flight --------------------------------------------------------------------


def lost_answers(sandbox: SandboxServer, count: int = 2) -> None:
    """The next `count` track requests are kept by Pendo, then their answer is cut off.

    Two: three in a row would read as Pendo being down, which stops the sync.
    """
    sandbox.script_faults([{"drop": True, "after_effect": True, "path": "/data/track"}] * count)


def test_in_doubt_resend_delivers_every_event_and_counts_the_possible_duplicates(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    lost_answers(sandbox)
    report = run(events(), event_frame(10), client, state)

    stored = [e["visitorId"] for e in sandbox.state(requests=False)["events"]]
    assert set(stored) == {f"v-{i}" for i in range(10)}
    assert (report.sent, report.failed, report.in_doubt) == (10, 0, 2)
    assert len(stored) - 10 <= report.in_doubt


def test_in_doubt_skip_sends_each_event_at_most_once_and_records_why(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    spec = SyncSpec(**{**events().__dict__, "in_doubt": "skip"})
    lost_answers(sandbox)
    first = run(spec, event_frame(10), client, state)
    again = run(spec, event_frame(10), client, state)

    stored = [e["visitorId"] for e in sandbox.state(requests=False)["events"]]
    assert sorted(stored) == sorted(f"v-{i}" for i in range(10))  # each exactly once
    assert (first.sent, first.failed, first.in_doubt) == (8, 2, 2)
    assert all(
        f.reason.startswith("in doubt: Pendo may have received this event")
        and "in_doubt: skip" in f.reason
        and not f.retryable
        for f in first.failures
    )
    assert (again.sent, again.skipped_reasons) == (0, {ALREADY_DELIVERED: 10})


def test_a_value_with_no_json_form_fails_its_own_row_and_the_rest_go_out(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    frame = pd.DataFrame(
        {"id": ["v-1", "v-2", "v-3"], "plan": [Decimal("1e400"), "bad \ud800 text", "pro"]},
        dtype=object,
    )

    report = run(visitors(), frame, client, state)

    assert (report.rows, report.sent, report.failed) == (3, 1, 2)
    assert [(f.record_id, f.field) for f in report.failures] == [("v-1", "plan"), ("v-2", "plan")]
    assert [f.retryable for f in report.failures] == [False, False]
    assert sorted(sandbox.state(requests=False)["metadata"]["visitor"]) == ["v-3"]


def test_an_internal_error_while_sending_still_accounts_for_every_row(
    integration_key: str, state: StateStore
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug below the client")

    with (
        PendoClient(
            integration_key=integration_key,
            base_url="http://127.0.0.1:9",
            http_transport=httpx.MockTransport(broken),
        ) as client,
        pytest.raises(SyncAborted) as aborted,
    ):
        run(visitors(), visitor_frame(["v-1", "v-2"]), client, state)

    report = aborted.value.report
    assert report.rows == report.sent + report.failed + report.skipped == 2
    assert [f.record_id for f in report.failures] == ["v-1", "v-2"]
    assert all(
        f.reason == "not sent: internal error while sending metadata: "
        "RuntimeError: a bug below the client"
        for f in report.failures
    )


def test_three_lost_answers_in_a_row_stop_the_sync_as_pendo_unreachable(
    sandbox: SandboxServer, client: PendoClient, state: StateStore
) -> None:
    lost_answers(sandbox, 3)

    with pytest.raises(SyncAborted) as aborted:
        run_sync(
            events(),
            event_frame(10),
            client,
            partition_key=PARTITION,
            options=SyncOptions(max_in_flight=1, now_ms=NOW_MS),
            state=state,
        )

    report = aborted.value.report
    assert "Pendo unreachable: 3 requests in a row lost their answer" in str(aborted.value)
    assert report.in_doubt == 3
    assert report.rows == report.sent + report.failed + report.skipped
    assert len(sandbox.state(requests=False)["events"]) == 3  # Pendo kept what it got

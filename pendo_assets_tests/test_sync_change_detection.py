"""Change detection: only what changed goes to Pendo, on SQLite and PostgreSQL state."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import pytest

from pendo_assets.client import PendoClient
from pendo_assets.sync.decide.change_detection import ALREADY_DELIVERED, ALREADY_SENT, UNCHANGED
from pendo_assets.sync.deliver.outcome import NOT_IN_PENDO, SyncAborted
from pendo_assets.sync.engine import Rows, SyncOptions, destination_of, run_sync
from pendo_assets.sync.prepare.field_types import MissingFieldsError
from pendo_assets.sync.record.state_store import StateScope, StateStore
from pendo_assets.sync.results import SyncReport
from pendo_assets.sync.spec import SourceSpec, SyncSpec

PARTITION = "2026-11-02"
NOW_MS = 1_794_000_000_000
CUSTOM = "/api/v1/metadata/visitor/custom/value"
SCHEMA = "/api/v1/metadata/schema/visitor"


@pytest.fixture
def state(state_on_each_backend: StateStore) -> StateStore:
    """A sync state store on SQLite, or on PostgreSQL in a schema of its own."""
    return state_on_each_backend


def visitors(mode: str = "upsert") -> SyncSpec:
    return SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        mode=mode,
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan", "seats": "seats"},
    )


def events(mapping_extra: dict[str, str] | None = None) -> SyncSpec:
    mapping = {"visitor": "visitorId", "name": "event", "at": "timestamp"}
    mapping.update(mapping_extra or {})
    return SyncSpec(
        name="events",
        object_type="track_events",
        source=SourceSpec(partition_column="at", table="events"),
        mapping=mapping,
    )


def visitor_frame(n: int, *, changed: dict[int, str] | None = None) -> pd.DataFrame:
    changed = changed or {}
    return pd.DataFrame(
        {
            "id": [f"v-{i}" for i in range(n)],
            "plan": [changed.get(i, "pro") for i in range(n)],
            "seats": list(range(n)),
        },
        dtype=object,
    )


def event_frame(n: int, **extra: list[Any]) -> pd.DataFrame:
    data: dict[str, list[Any]] = {
        "visitor": [f"v-{i}" for i in range(n)],
        "name": ["Exported"] * n,
        "at": [NOW_MS - 1000 * i for i in range(n)],
    }
    data.update(extra)
    return pd.DataFrame(data, dtype=object)


def run(
    spec: SyncSpec,
    frame: Rows,
    client: PendoClient,
    state: StateStore,
    partition_key: str = PARTITION,
    **options: Any,
) -> SyncReport:
    options.setdefault("preflight", spec.is_metadata)
    return run_sync(
        spec,
        frame,
        client,
        partition_key=partition_key,
        options=SyncOptions(max_in_flight=4, now_ms=NOW_MS, run_id="run-1", **options),
        state=state,
    )


def scoped(state: StateStore, client: PendoClient, spec: SyncSpec) -> StateScope:
    """The state the sync keeps for the destination `client` points at."""
    return state.scope(destination_of(spec, client), spec.name)


def sent_bodies(sandbox: Any, path: str) -> list[Any]:
    return [r["body"] for r in sandbox.state()["requests"] if r["path"] == path]


# -- metadata ----------------------------------------------------------------------------------


def test_a_second_run_of_an_unchanged_partition_sends_no_request(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    first = run(visitors(), visitor_frame(50), client, state)
    requests_after_first = sandbox.state()["counters"]["requests"]
    second = run(visitors(), visitor_frame(50), client, state)

    assert (first.sent, first.skipped) == (50, 0)
    assert sandbox.state()["counters"]["requests"] == requests_after_first
    assert (second.sent, second.skipped, second.skipped_unchanged, second.requests) == (
        0,
        50,
        50,
        0,
    )
    assert second.skipped_reasons == {UNCHANGED: 50}


def test_a_first_sync_compares_no_chunk_with_the_state(
    client: PendoClient, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[int] = []
    original = StateScope.changes

    def counting(self: StateScope, keys: Any, hashes: Any) -> Any:
        compared.append(len(keys))
        return original(self, keys, hashes)

    monkeypatch.setattr(StateScope, "changes", counting)
    chunks = [visitor_frame(30).iloc[i : i + 10] for i in range(0, 30, 10)]
    first = run(visitors(), chunks, client, state, preflight=False)
    second = run(visitors(), visitor_frame(30), client, state)

    assert (first.sent, first.requests) == (30, 3)
    assert compared == [30]  # only the second run, whose sync had state by then
    assert (second.sent, second.skipped_unchanged) == (0, 30)


def test_another_partitions_records_are_compared_on_a_partitions_first_sync(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    run(visitors(), visitor_frame(20), client, state)
    sandbox.reset()
    report = run(visitors(), visitor_frame(25), client, state, partition_key="2026-11-03")

    [body] = sent_bodies(sandbox, CUSTOM)
    assert [r["visitorId"] for r in body] == [f"v-{i}" for i in range(20, 25)]
    assert (report.sent, report.skipped_unchanged) == (5, 20)


def test_changing_ten_rows_sends_exactly_those_ten(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    run(visitors(), visitor_frame(100), client, state)
    sandbox.reset()
    changed = {i: "enterprise" for i in range(5, 100, 10)}
    report = run(visitors(), visitor_frame(100, changed=changed), client, state)

    [body] = sent_bodies(sandbox, CUSTOM)
    assert [r["visitorId"] for r in body] == [f"v-{i}" for i in sorted(changed)]
    assert all(r["values"]["plan"] == "enterprise" for r in body)
    assert (report.sent, report.skipped_unchanged) == (10, 90)


def test_state_holds_a_hash_per_accepted_record(client: PendoClient, state: StateStore) -> None:
    run(visitors(), visitor_frame(3), client, state)
    kept = scoped(state, client, visitors())
    assert kept.count() == 3
    assert set(kept.known(["v-0", "v-1", "v-2", "v-9"])) == {"v-0", "v-1", "v-2"}


def test_failed_rows_are_not_remembered_and_go_out_again(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    frame = visitor_frame(4)
    frame.loc[2, "seats"] = "lots"  # does not fit the number field: fails before sending
    first = run(visitors(), frame, client, state)
    frame.loc[2, "seats"] = 7
    sandbox.reset()
    second = run(visitors(), frame, client, state)

    assert [(f.record_id, f.field) for f in first.failures] == [("v-2", "seats")]
    assert [r["visitorId"] for r in sent_bodies(sandbox, CUSTOM)[0]] == ["v-2"]
    assert (second.sent, second.skipped_unchanged, second.failed) == (1, 3, 0)


def test_insert_mode_sends_only_ids_never_accepted_before(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    run(visitors("insert"), visitor_frame(3), client, state)
    sandbox.reset()
    report = run(visitors("insert"), visitor_frame(5, changed={0: "free"}), client, state)

    [request] = [r for r in sandbox.state()["requests"] if r["path"] == CUSTOM]
    assert request["query"] == {"create": "true"}
    assert [r["visitorId"] for r in request["body"]] == ["v-3", "v-4"]
    assert report.skipped_reasons == {ALREADY_SENT: 3}


def test_update_mode_sends_changes_without_creating(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    run(visitors("upsert"), visitor_frame(2), client, state)
    before = len(sandbox.state()["requests"])
    report = run(visitors("update"), visitor_frame(3, changed={1: "team"}), client, state)

    [request] = [r for r in sandbox.state()["requests"][before:] if r["path"] == CUSTOM]
    assert request["query"] == {}
    assert [r["visitorId"] for r in request["body"]] == ["v-1", "v-2"]
    assert report.failures == []
    assert (report.sent, report.skipped, report.not_in_pendo) == (1, 2, 1)
    assert report.skipped_reasons == {UNCHANGED: 1, NOT_IN_PENDO: 1}


def test_update_mode_sends_ids_not_in_pendo_again_on_the_next_run(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    run(visitors("update"), visitor_frame(2), client, state)
    before = len(sandbox.state()["requests"])
    report = run(visitors("update"), visitor_frame(2), client, state)

    [request] = [r for r in sandbox.state()["requests"][before:] if r["path"] == CUSTOM]
    assert [r["visitorId"] for r in request["body"]] == ["v-0", "v-1"]
    assert (report.not_in_pendo, report.failed, report.failure_rate) == (2, 0, 0.0)


def test_full_refresh_resends_every_record(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    run(visitors(), visitor_frame(20), client, state)
    report = run(visitors(), visitor_frame(20), client, state, full_refresh=True)
    assert (report.sent, report.skipped) == (20, 0)


# -- dry run and preflight ---------------------------------------------------------------------


def test_accepted_payloads_are_not_kept_in_the_state_unless_the_sync_asks(
    client: PendoClient, state: StateStore
) -> None:
    keeping = dataclasses.replace(visitors(), name="keeping", keep_payloads=True)
    run(visitors(), visitor_frame(2), client, state)
    run(keeping, visitor_frame(2), client, state)

    assert scoped(state, client, visitors()).payloads(["v-0", "v-1"]) == {}
    assert set(scoped(state, client, keeping).payloads(["v-0", "v-1"])) == {"v-0", "v-1"}
    assert set(scoped(state, client, visitors()).known(["v-0", "v-1"])) == {"v-0", "v-1"}


def test_a_dry_run_without_kept_payloads_marks_old_values_as_not_kept(
    client: PendoClient, state: StateStore
) -> None:
    run(visitors(), visitor_frame(2), client, state)

    report = run(visitors(), visitor_frame(2, changed={1: "team"}), client, state, dry_run=True)

    assert report.dry_run is not None
    assert report.dry_run.preview.splitlines() == [
        "| id | field | old -> new |",
        "|---|---|---|",
        '| v-1 | plan | (not kept) -> "team" |',
        "| v-1 | seats | (not kept) -> 1 |",
    ]


def test_dry_run_sends_nothing_changes_nothing_and_previews_the_changes(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    spec = dataclasses.replace(visitors(), keep_payloads=True)
    run(spec, visitor_frame(3), client, state)
    kept = scoped(state, client, spec)
    before = kept.known(["v-0", "v-1", "v-2"])
    sandbox.reset()
    frame = pd.concat(
        [
            visitor_frame(3, changed={1: "team"}),
            pd.DataFrame(
                [{"id": None, "plan": "x", "seats": 1}, {"id": "v-9", "plan": "free", "seats": 4}]
            ),
        ],
        ignore_index=True,
    )
    report = run(spec, frame, client, state, dry_run=True)

    assert sent_bodies(sandbox, CUSTOM) == []
    assert kept.known(["v-0", "v-1", "v-2", "v-9"]) == before
    assert report.dry_run is not None
    assert (
        report.dry_run.would_create,
        report.dry_run.would_change,
        report.dry_run.unchanged,
        report.dry_run.invalid,
    ) == (1, 1, 2, 1)
    assert report.dry_run.preview.splitlines() == [
        "| id | field | old -> new |",
        "|---|---|---|",
        '| v-1 | plan | "pro" -> "team" |',
        '| v-9 | plan | (none) -> "free" |',
        "| v-9 | seats | (none) -> 4 |",
    ]
    assert report.sent == 0


def test_preflight_names_the_fields_pendo_lacks_and_sends_nothing(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    spec = SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "plan": "plan", "region": "region", "mail": "agent.mail"},
    )
    frame = pd.DataFrame([{"id": "v-1", "plan": "pro", "region": "eu", "mail": "a@b.c"}])
    with pytest.raises(SyncAborted) as raised:
        run(spec, frame, client, state)

    message = str(raised.value)
    assert "Pendo has no visitor metadata field(s) custom.region, agent.mail" in message
    assert "Settings > Data Mappings" in message
    assert not raised.value.retryable
    assert isinstance(MissingFieldsError(message), MissingFieldsError)
    assert [r["path"] for r in sandbox.state()["requests"]] == [SCHEMA]
    assert [f.reason.startswith("not sent: ") for f in raised.value.report.failures] == [True]
    assert scoped(state, client, spec).count() == 0


def test_values_are_coerced_to_the_declared_type_when_nothing_is_lost(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    spec = SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping={"id": "visitorId", "seats": "seats", "trial": "is_trial", "since": "signup_date"},
    )
    frame = pd.DataFrame(
        [
            {"id": "v-1", "seats": "42", "trial": 1, "since": "2026-01-15T09:30:00Z"},
            {"id": "v-2", "seats": "many", "trial": 0, "since": None},
        ],
        dtype=object,
    )
    report = run(spec, frame, client, state)

    [body] = sent_bodies(sandbox, CUSTOM)
    assert body == [
        {
            "visitorId": "v-1",
            "values": {"seats": 42, "is_trial": True, "signup_date": 1_768_469_400_000},
        }
    ]
    assert [(f.record_id, f.field, f.reason) for f in report.failures] == [
        ("v-2", "seats", "value 'many' does not fit Pendo field 'seats': expects number")
    ]


# -- events ------------------------------------------------------------------------------------


def test_an_event_partition_materialized_twice_leaves_each_event_once(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    first = run(events(), event_frame(30), client, state)
    second = run(events(), event_frame(30), client, state)
    third = run(events(), event_frame(30), client, state, full_refresh=True)

    assert len(sandbox.state()["events"]) == 30
    assert (first.sent, second.sent, third.sent) == (30, 0, 0)
    assert second.skipped_reasons == {ALREADY_DELIVERED: 30}


def test_resend_events_with_full_refresh_sends_them_again(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    run(events(), event_frame(5), client, state)
    sandbox.reset()  # a fresh sandbox also forgets its pacing: no need to wait a second
    report = run(events(), event_frame(5), client, state, full_refresh=True, resend_events=True)
    assert report.sent == 5
    assert len(sandbox.state()["events"]) == 5


def test_an_event_id_column_is_the_key_and_is_not_sent(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    frame = event_frame(3, evt=["e-1", "e-2", "e-3"])
    run(events({"evt": "event_id"}), frame, client, state)
    report = run(events({"evt": "event_id"}), frame, client, state)

    stored = sandbox.state()["events"]
    assert len(stored) == 3
    assert all("evt" not in e["properties"] and "event_id" not in e["properties"] for e in stored)
    assert report.skipped_reasons == {ALREADY_DELIVERED: 3}
    kept = scoped(state, client, events({"evt": "event_id"}))
    assert set(kept.known(["id:e-1", "id:e-2", "id:e-3"])) == {
        "id:e-1",
        "id:e-2",
        "id:e-3",
    }


def test_identical_rows_in_one_partition_are_one_event(
    sandbox: Any, client: PendoClient, state: StateStore
) -> None:
    frame = pd.concat([event_frame(2), event_frame(1)], ignore_index=True)
    report = run(events(), frame, client, state)
    assert len(sandbox.state()["events"]) == 2
    assert report.skipped_reasons == {"duplicate of an earlier row with the same event key": 1}
    assert report.skipped_unchanged == 0

"""Failed rows and failed syncs of ``pendo/<name>``, materialized through ``dagster.materialize``.

Every bad row lands in ``pendo_sync_failures`` at the state URL with the sync, partition, run,
record, field and reason; a later run of the partition marks the earlier runs' failures resolved.
A refused or missing credential, or a mapped field Pendo lacks, fails the step at once (no
retries) with a message naming the sync, after recording what was and was not sent. A metadata
step reads Pendo's schema before sending anything, so that is where a refused key shows first.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, DateTime, Integer, Text

from pendo_assets.client.errors import INTEGRATION_KEY_HELP
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.spec import SourceSpec, SyncSpec

VISITORS = SyncSpec(
    name="visitor_profiles",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan", "seats": "seats", "email": "agent.email"},
    max_failure_rate=1.0,
)
EVENTS = SyncSpec(
    name="product_events",
    object_type="track_events",
    source=SourceSpec(partition_column="loaded_at", table="events"),
    mapping={
        "visitor_id": "visitorId",
        "event_name": "event",
        "occurred_at": "timestamp",
        "properties": "properties",
    },
    max_failure_rate=1.0,
)
SCHEMA = "/api/v1/metadata/schema/visitor"
CUSTOM = "/api/v1/metadata/visitor/custom/value"
NOT_SENT_KEY_REFUSED_ON_SCHEMA = (
    "not sent: Authentication failed: Pendo refused the integration key (HTTP 403 on GET "
    f"{SCHEMA}); it is invalid or lacks write access. {INTEGRATION_KEY_HELP}"
)
NOT_SENT_KEY_REFUSED_ON_WRITE = (
    "not sent: Authentication failed: Pendo refused the integration key (HTTP 403 on POST "
    f"{CUSTOM}); it is invalid or lacks write access. {INTEGRATION_KEY_HELP}"
)


def at(day: date, hour: int, minute: int = 0) -> datetime:
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


def visitors(url: str, day: date, rows: list[tuple[Any, Any, Any]]) -> None:
    """Rows ``(id, plan, seats)``, one a minute from 08:00 on ``day``."""
    create(
        url,
        "visitors",
        Column("id", Text),
        Column("plan", Text),  # SQLite keeps bytes given for a TEXT column as a BLOB
        Column("seats", Integer),  # and text it cannot read as a number as text
        Column("email", Text),
        Column("updated_at", DateTime),
        rows=[
            {
                "id": visitor_id,
                "plan": plan,
                "seats": seats,
                "email": "someone@example.com",
                "updated_at": at(day, 8, minute),
            }
            for minute, (visitor_id, plan, seats) in enumerate(rows)
        ],
    )


def events(url: str, day: date, rows: list[tuple[Any, Any, Any, Any]]) -> None:
    """Rows ``(visitor_id, event_name, occurred_at, properties)``, loaded one a minute."""
    create(
        url,
        "events",
        Column("visitor_id", Text),
        Column("event_name", Text),
        Column("occurred_at", Text),
        Column("properties", Text),
        Column("loaded_at", BigInteger),
        rows=[
            {
                "visitor_id": visitor_id,
                "event_name": name,
                "occurred_at": occurred_at,
                "properties": properties,
                "loaded_at": epoch_ms(at(day, 9, minute)),
            }
            for minute, (visitor_id, name, occurred_at, properties) in enumerate(rows)
        ],
    )


def stored(failures: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(f["record_id"], f["field"], f["reason"], f["http_status"]) for f in failures]


# -- every kind of bad row, in pendo_sync_failures -------------------------------------------


def test_bad_metadata_rows_are_stored_with_record_field_and_reason(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    visitors(
        sqlite_url,
        sync_day,
        [
            ("v-good", "pro", 12),
            (None, "pro", 3),
            ("", "pro", 3),
            ("  ", "pro", 3),
            ("v-blob", b"\x00\x01", 3),
            ("v-lots", "pro", "lots"),
        ],
    )
    spec = SyncSpec(
        name=VISITORS.name,
        object_type=VISITORS.object_type,
        source=VISITORS.source,
        mapping={"id": "visitorId", "plan": "plan", "seats": "seats"},
        max_failure_rate=1.0,
    )

    run = materialize_sync(spec, sync_day)

    assert run.result.success
    assert stored(stored_failures()) == [
        (None, "visitorId", "visitorId identifier is missing or empty", None),
        (None, "visitorId", "visitorId identifier is missing or empty", None),
        (None, "visitorId", "visitorId identifier is missing or empty", None),
        (
            "v-blob",
            "plan",
            "column 'plan': value is bytes, which have no JSON form (cast them to text in the "
            "query)",
            None,
        ),
        ("v-lots", "seats", "value 'lots' does not fit Pendo field 'seats': expects number", None),
    ]


def test_every_stored_failure_names_the_sync_the_partition_and_the_run(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    visitors(sqlite_url, sync_day, [(None, "pro", 1), ("", "pro", 2), ("v-1", "pro", 3)])

    run = materialize_sync(VISITORS, sync_day)

    failures = stored_failures()
    assert len(failures) == 2
    for failure in failures:
        assert failure["sync_name"] == "visitor_profiles"
        assert failure["partition_key"] == sync_day.isoformat()
        assert failure["run_id"] == run.run_id
        assert failure["failed_at"] is not None
        assert failure["resolved_at"] is None


def test_failures_of_two_runs_are_told_apart_by_run_id(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    visitors(sqlite_url, sync_day, [(None, "pro", 1)])

    first = materialize_sync(VISITORS, sync_day)
    second = materialize_sync(VISITORS, sync_day)

    assert first.run_id != second.run_id
    assert [f["run_id"] for f in stored_failures()] == [first.run_id, second.run_id]
    assert len(stored_failures(run_id=second.run_id)) == 1


def test_a_later_run_of_the_partition_marks_the_earlier_runs_failures_resolved(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    visitors(sqlite_url, sync_day, [(None, "pro", 1)])

    first = materialize_sync(VISITORS, sync_day)
    second = materialize_sync(VISITORS, sync_day)

    [earlier] = stored_failures(run_id=first.run_id)
    [later] = stored_failures(run_id=second.run_id)
    assert earlier["resolved_at"] is not None
    assert earlier["resolved_at"] >= earlier["failed_at"]
    assert later["resolved_at"] is None


def test_a_run_leaves_the_failures_of_other_partitions_unresolved(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    day_before = sync_day - timedelta(days=1)
    create(
        sqlite_url,
        "visitors",
        Column("id", Text),
        Column("plan", Text),
        Column("seats", Integer),
        Column("email", Text),
        Column("updated_at", DateTime),
        rows=[
            {"id": None, "plan": "pro", "seats": 1, "email": None, "updated_at": at(day, 8)}
            for day in (day_before, sync_day)
        ],
    )

    materialize_sync(VISITORS, day_before)
    materialize_sync(VISITORS, sync_day)

    assert [(f["partition_key"], f["resolved_at"]) for f in stored_failures()] == [
        (day_before.isoformat(), None),
        (sync_day.isoformat(), None),
    ]


def test_bad_event_rows_are_stored_with_record_field_and_reason(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    ok = epoch_ms(at(sync_day, 7))
    events(
        sqlite_url,
        sync_day,
        [
            ("v-good", "Saved", ok, json.dumps({"kind": "draft"})),
            (None, "Saved", ok, None),
            ("v-no-name", "", ok, None),
            ("v-bad-time", "Saved", "half past nine", None),
            ("v-not-json", "Saved", ok, "{'kind': 'draft'}"),
            ("v-not-object", "Saved", ok, json.dumps(["draft"])),
            ("v-hidden", "Saved", ok, json.dumps({"2fast": True})),
            ("v-large", "Saved", ok, json.dumps({"text": "x" * 600})),
        ],
    )

    run = materialize_sync(EVENTS, sync_day)

    assert run.result.success
    assert stored(stored_failures()) == [
        (None, "visitorId", "visitorId identifier is missing or empty", None),
        ("v-no-name", "event", "event name is missing or empty", None),
        (
            "v-bad-time",
            "timestamp",
            "timestamp is not an absolute instant (a relative word, or no date with a year)",
            None,
        ),
        ("v-not-json", "properties", "column 'properties' is not valid JSON", None),
        ("v-not-object", "properties", "column 'properties' is not a JSON object", None),
        (
            "v-hidden",
            "2fast",
            "event property name '2fast' starts with a digit; Pendo would hide it",
            None,
        ),
        (
            "v-large",
            "properties",
            "properties are 611 bytes; Pendo drops those over 512 bytes",
            None,
        ),
    ]
    metadata = run.metadata("pendo")
    assert (metadata["dagster/row_count"], metadata["sent"], metadata["failed"]) == (8, 1, 7)


def test_an_event_pendo_refuses_is_stored_with_its_http_status(
    materialize_sync: Any,
    sandbox: SandboxServer,
    sqlite_url: str,
    sync_day: date,
    stored_failures: Any,
) -> None:
    ok = epoch_ms(at(sync_day, 7))
    events(sqlite_url, sync_day, [("v-1", "Saved", ok, None), ("v-2", "Saved", ok, None)])
    sandbox.script_faults([{"status": 400, "body": {"message": "no such app"}}])

    run = materialize_sync(EVENTS, sync_day, max_in_flight=1)  # v-1 goes first

    assert run.result.success
    assert stored(stored_failures()) == [("v-1", None, "HTTP 400: no such app", 400)]
    assert [e["visitorId"] for e in sandbox.state(requests=False)["events"]] == ["v-2"]


def test_the_failures_table_in_the_metadata_shows_id_field_and_reason(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [(None, "pro", 1), ("v-1", b"\x00", 2)])

    run = materialize_sync(VISITORS, sync_day)

    assert run.metadata("pendo")["failures"] == (
        "| id | field | reason |\n"
        "|---|---|---|\n"
        "| (missing) | visitorId | visitorId identifier is missing or empty |\n"
        "| v-1 | plan | column 'plan': value is bytes, which have no JSON form (cast them to "
        "text in the query) |"
    )


# -- refused and missing credentials --------------------------------------------------------


def test_a_refused_integration_key_stops_the_step_before_sending_naming_sync_and_auth(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1), ("v-2", "pro", 2)])
    spec = SyncSpec(
        name=VISITORS.name,
        object_type=VISITORS.object_type,
        source=VISITORS.source,
        mapping={"id": "visitorId", "plan": "plan"},
    )

    run = materialize_sync(spec, sync_day, integration_key="not-the-key")

    assert not run.result.success
    failure = run.step_failure("pendo").user_failure_data
    assert failure.description.startswith(
        f"sync 'visitor_profiles' partition {sync_day.isoformat()} stopped before sending: "
        "Authentication failed: Pendo refused the integration key (HTTP 403 on GET "
        "/api/v1/metadata/schema/visitor)"
    )
    assert failure.description.endswith("(0 sent, 2 failed, 0 skipped of 2 rows)")
    assert "not-the-key" not in failure.description
    assert not run.materialized("pendo")


def test_a_refused_key_is_not_retried(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1)])

    run = materialize_sync(VISITORS, sync_day, integration_key="not-the-key", max_in_flight=1)

    assert run.result.retry_attempts_for_node("pendo__visitor_profiles") == 0
    state = sandbox.state()
    assert state["counters"]["responses_by_status"] == {"403": 1}
    assert [(r["method"], r["path"]) for r in state["requests"]] == [("GET", SCHEMA)]


def test_a_refused_key_records_every_row_as_not_sent(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1), (None, "pro", 2)])

    run = materialize_sync(VISITORS, sync_day, integration_key="not-the-key", max_in_flight=1)

    assert stored(stored_failures(run_id=run.run_id)) == [
        ("v-1", None, NOT_SENT_KEY_REFUSED_ON_SCHEMA, None),
        (None, "visitorId", "visitorId identifier is missing or empty", None),
    ]
    metadata = {k: v.value for k, v in run.step_failure("pendo").user_failure_data.metadata.items()}
    assert {k: metadata[k] for k in ("dagster/row_count", "sent", "failed", "skipped")} == {
        "dagster/row_count": 2,
        "sent": 0,
        "failed": 2,
        "skipped": 0,
    }


def test_rows_pendo_accepted_before_the_key_was_refused_count_as_sent(
    materialize_sync: Any,
    sandbox: SandboxServer,
    sqlite_url: str,
    sync_day: date,
    stored_failures: Any,
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1), ("v-2", "pro", 2), ("v-3", "pro", 3)])
    spec = SyncSpec(
        name=VISITORS.name,
        object_type=VISITORS.object_type,
        source=VISITORS.source,
        mapping={"id": "visitorId", "plan": "plan"},
    )
    # The schema read passes; Pendo accepts the first batch (v-1), then refuses the key.
    accepted = {"total": 1, "updated": 1, "failed": 0, "missing": [], "errors": []}
    sandbox.script_faults(
        [
            {"status": 200, "body": accepted, "path": CUSTOM},
            {"status": 403, "path": CUSTOM},
        ]
    )

    run = materialize_sync(spec, sync_day, batch_size=1, max_in_flight=1)

    failure = run.step_failure("pendo").user_failure_data
    assert failure.description.startswith(
        f"sync 'visitor_profiles' partition {sync_day.isoformat()} stopped: Authentication "
        f"failed: Pendo refused the integration key (HTTP 403 on POST {CUSTOM})"
    )
    assert failure.description.endswith("(1 sent, 2 failed, 0 skipped of 3 rows)")
    assert failure.metadata["sent"].value == 1
    assert [(f["record_id"], f["reason"]) for f in stored_failures()] == [
        ("v-2", NOT_SENT_KEY_REFUSED_ON_WRITE),
        ("v-3", NOT_SENT_KEY_REFUSED_ON_WRITE),
    ]


def test_a_refused_track_secret_fails_the_step_naming_the_secret(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    events(sqlite_url, sync_day, [("v-1", "Saved", epoch_ms(at(sync_day, 7)), None)])

    run = materialize_sync(EVENTS, sync_day, track_event_secret="not-the-secret")

    assert not run.result.success
    description = run.step_failure("pendo").user_failure_data.description
    assert description.startswith(
        f"sync 'product_events' partition {sync_day.isoformat()} stopped: Authentication "
        "failed: Pendo refused the Track Event shared secret (HTTP 403 on POST /data/track)"
    )
    assert run.result.retry_attempts_for_node("pendo__product_events") == 0
    assert sandbox.state(requests=False)["events"] == []


def test_a_missing_track_secret_fails_the_step_at_once_saying_which_variable_to_set(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    events(sqlite_url, sync_day, [("v-1", "Saved", epoch_ms(at(sync_day, 7)), None)])

    run = materialize_sync(EVENTS, sync_day, track_event_secret=None)

    assert not run.result.success
    description = run.step_failure("pendo").user_failure_data.description
    assert description.startswith(
        "sync 'product_events': Sending track events needs the Track Event shared secret "
        "(set PENDO_TRACK_EVENT_SECRET)."
    )
    assert run.result.retry_attempts_for_node("pendo__product_events") == 0
    assert sandbox.state(requests=False)["counters"]["requests"] == 0


def test_a_missing_integration_key_fails_the_step_at_once_saying_which_variable_to_set(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1)])

    run = materialize_sync(VISITORS, sync_day, integration_key=None)

    assert not run.result.success
    description = run.step_failure("pendo").user_failure_data.description
    assert description.startswith(
        "sync 'visitor_profiles': Metadata calls need a Pendo integration key with write "
        "access (set PENDO_INTEGRATION_KEY)."
    )
    assert run.result.retry_attempts_for_node("pendo__visitor_profiles") == 0
    assert sandbox.state(requests=False)["counters"]["requests"] == 0


def test_a_metadata_only_sync_needs_no_track_secret(
    materialize_sync: Any, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1)])

    run = materialize_sync(VISITORS, sync_day, track_event_secret=None)

    assert run.result.success
    assert run.metadata("pendo")["sent"] == 1


# -- mapped fields Pendo lacks ------------------------------------------------------------------

UNKNOWN_FIELDS = SyncSpec(
    name=VISITORS.name,
    object_type=VISITORS.object_type,
    source=VISITORS.source,
    mapping={"id": "visitorId", "plan": "plan", "seats": "licences", "email": "agent.phone"},
    max_failure_rate=1.0,
)
MISSING_FIELDS = (
    "sync 'visitor_profiles': Pendo has no visitor metadata field(s) custom.licences, "
    "agent.phone. Add them in Pendo under Settings > Data Mappings (custom fields) before "
    "syncing, or remove them from the mapping. Nothing was sent."
)


def test_mapped_fields_pendo_lacks_stop_the_step_before_sending_without_a_retry(
    materialize_sync: Any, sandbox: SandboxServer, sqlite_url: str, sync_day: date
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1), (None, "pro", 2)])

    run = materialize_sync(UNKNOWN_FIELDS, sync_day)

    assert not run.result.success
    assert not run.materialized("pendo")
    assert run.step_failure("pendo").user_failure_data.description == (
        f"sync 'visitor_profiles' partition {sync_day.isoformat()} stopped before sending: "
        f"{MISSING_FIELDS} (0 sent, 2 failed, 0 skipped of 2 rows)"
    )
    assert run.result.retry_attempts_for_node("pendo__visitor_profiles") == 0
    assert [(r["method"], r["path"]) for r in sandbox.state()["requests"]] == [("GET", SCHEMA)]


def test_mapped_fields_pendo_lacks_record_every_valid_row_as_not_sent(
    materialize_sync: Any, sqlite_url: str, sync_day: date, stored_failures: Any
) -> None:
    visitors(sqlite_url, sync_day, [("v-1", "pro", 1), (None, "pro", 2), ("v-2", "pro", 3)])

    run = materialize_sync(UNKNOWN_FIELDS, sync_day)

    assert stored(stored_failures(run_id=run.run_id)) == [
        ("v-1", None, f"not sent: {MISSING_FIELDS}", None),
        (None, "visitorId", "visitorId identifier is missing or empty", None),
        ("v-2", None, f"not sent: {MISSING_FIELDS}", None),
    ]

"""Per sync: the sensor ``<name>_retry_failed_rows``, evaluated with ``build_sensor_context``
over a SQLite state database whose ``pendo_sync_failures`` rows are written here.

The sensor's clock is passed in, so every delay is checked at exact times; one test runs the
whole round trip through ``dagster.materialize`` and the sandbox.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy import Column, DateTime, Text

from pendo_assets.defs.automation import build_job
from pendo_assets.defs.database_resources import SyncStateResource, WarehouseResource
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.defs.resources import PendoResource
from pendo_assets.defs.retry_sensor import build_retry_sensor
from pendo_assets.sandbox import SandboxServer
from pendo_assets.sync.record.failure_store import FailureStore
from pendo_assets.sync.results import RowFailure
from pendo_assets.sync.spec import SourceSpec, SyncSpec, parse_syncs

SPEC = SyncSpec(
    name="visitor_plans",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan"},
    max_failure_rate=1.0,
    retry_max_attempts=3,
    retry_base_delay_minutes=30,
)
DAY = "2026-11-19"
OTHER_DAY = "2026-11-20"
FAILED_AT = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
CUSTOM_VALUES = "/api/v1/metadata/visitor/custom/value"


@pytest.fixture
def store(state_url: str) -> Iterator[FailureStore]:
    """The failure store at ``state_url``, where the tests write what runs would have left."""
    engine = sa.create_engine(state_url, poolclass=sa.NullPool)
    yield FailureStore(engine)
    engine.dispose()


def fail(
    store: FailureStore,
    partition: str,
    when: datetime,
    *ids: str,
    run_id: str = "run-1",
    retryable: bool = True,
) -> None:
    """What a run of the partition that started and ended at `when` leaves: these rows failed
    (Pendo unavailable, or refused as invalid), earlier failures resolved."""
    status, reason = (503, "HTTP 503: unavailable") if retryable else (400, "HTTP 400: rejected")
    store.record_run(
        sync_name=SPEC.name,
        partition_key=partition,
        run_id=run_id,
        run_started_at=when,
        failures=[
            RowFailure(row=i, record_id=id_, reason=reason, http_status=status, retryable=retryable)
            for i, id_ in enumerate(ids)
        ],
        when=when,
    )


def succeed(store: FailureStore, partition: str, when: datetime, run_id: str) -> None:
    """What a run of the partition whose rows all went through leaves."""
    store.record_run(
        sync_name=SPEC.name,
        partition_key=partition,
        run_id=run_id,
        run_started_at=when,
        failures=[],
        when=when,
    )


class Evaluation:
    """One sensor evaluation: its result and what it logged."""

    def __init__(self, result: Any, logged: list[logging.LogRecord]) -> None:
        self.result = result
        self.warnings = [r.getMessage() for r in logged if r.levelno >= logging.WARNING]
        self.infos = [r.getMessage() for r in logged if r.levelno == logging.INFO]

    @property
    def cursor(self) -> dict[str, Any]:
        return json.loads(self.result.cursor)

    @property
    def requested(self) -> list[tuple[str, str, dict[str, str]]]:
        """(partition key, run key, tags) of each run request."""
        if isinstance(self.result, dg.SkipReason):
            return []
        return [(r.partition_key, r.run_key, dict(r.tags)) for r in self.result.run_requests]

    @property
    def skip_message(self) -> str | None:
        if isinstance(self.result, dg.SkipReason):
            return self.result.skip_message
        return self.result.skip_reason.skip_message if self.result.skip_reason else None


class Collect(logging.Handler):
    """Keeps what the sensor logs, from INFO up."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def evaluate(
    state_url: str,
    now: datetime,
    cursor: str | None = None,
    spec: SyncSpec = SPEC,
    instance: dg.DagsterInstance | None = None,
) -> Evaluation:
    """One evaluation at `now`; the Dagster instance (its runs) is empty unless given."""
    sensor = build_retry_sensor(spec, build_job(spec), clock=lambda: now)
    collect = Collect()
    resources = {"sync_state": SyncStateResource(url=state_url)}
    with (
        dg.DagsterInstance.ephemeral() if instance is None else nullcontext(instance) as runs,
        dg.build_sensor_context(cursor=cursor, resources=resources, instance=runs) as context,
    ):
        context.log.addHandler(collect)
        result = sensor(context)
    return Evaluation(result, collect.records)


def add_run(
    instance: dg.DagsterInstance,
    partition: str,
    status: dg.DagsterRunStatus,
    job_name: str = "visitor_plans_sync",
) -> None:
    """A run of `job_name` for `partition` in the instance, in `status`."""
    instance.add_run(
        dg.DagsterRun(
            job_name=job_name,
            run_id=str(uuid.uuid4()),
            tags={"dagster/partition": partition},
            status=status,
        )
    )


def entry(attempts: int, failed_at: datetime, requested_at: datetime, gave_up: bool = False) -> Any:
    return {
        "attempts": attempts,
        "failed_at": failed_at.isoformat(),
        "requested_at": requested_at.isoformat(),
        "gave_up": gave_up,
    }


def retry(partition: str, attempt: int, based_on: datetime) -> tuple[str, str, dict[str, str]]:
    """The run request of one attempt: partition, run key and tag."""
    run_key = f"visitor_plans:retry:{partition}:{attempt}:{based_on.isoformat()}"
    tags = {
        "pendo_assets/retry_attempt": str(attempt),
        "pendo_assets/sync_partition": f"visitor_plans:{partition}",
    }
    return (partition, run_key, tags)


# -- the definition --------------------------------------------------------------------------


def test_retry_sensor_targets_the_sync_job_every_minute_and_starts_stopped(
    sqlite_url: str, state_url: str
) -> None:
    defs = build_pendo_definitions(
        [SPEC],
        start_date=date(2026, 11, 1),
        resources={
            "pendo": PendoResource(),
            "warehouse": WarehouseResource(url=sqlite_url),
            "sync_state": SyncStateResource(url=state_url),
        },
    )

    sensor = defs.resolve_sensor_def("visitor_plans_retry_failed_rows")

    assert sensor.job_name == "visitor_plans_sync"
    assert sensor.minimum_interval_seconds == 60
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.required_resource_keys == {"sync_state"}


# -- when attempts are requested -------------------------------------------------------------


def test_no_unresolved_failures_request_nothing(store: FailureStore, state_url: str) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    succeed(store, DAY, FAILED_AT + MINUTE, run_id="run-2")

    evaluation = evaluate(state_url, FAILED_AT + timedelta(days=1))

    assert isinstance(evaluation.result, dg.SkipReason)
    assert evaluation.skip_message == (
        "no unresolved retryable failures of sync 'visitor_plans' in pendo_sync_failures"
    )


def test_failed_partitions_are_not_requested_before_the_base_delay(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1", "v-2")

    evaluation = evaluate(state_url, FAILED_AT + 30 * MINUTE - SECOND)

    assert isinstance(evaluation.result, dg.SkipReason)
    assert evaluation.skip_message == (
        f"1 partition(s) with failed rows waiting; next: {DAY} (attempt 1 of 3) at "
        f"{(FAILED_AT + 30 * MINUTE).isoformat()}"
    )


def test_each_failed_partition_is_requested_once_its_base_delay_has_passed(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1", "v-2")
    fail(store, OTHER_DAY, FAILED_AT + 5 * MINUTE, "v-3", run_id="run-2")
    now = FAILED_AT + 35 * MINUTE

    evaluation = evaluate(state_url, now)

    assert evaluation.requested == [
        retry(DAY, 1, FAILED_AT),
        retry(OTHER_DAY, 1, FAILED_AT + 5 * MINUTE),
    ]
    assert evaluation.cursor == {
        DAY: entry(1, FAILED_AT, now),
        OTHER_DAY: entry(1, FAILED_AT + 5 * MINUTE, now),
    }


def test_a_partition_is_requested_only_when_its_own_delay_has_passed(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    fail(store, OTHER_DAY, FAILED_AT + 20 * MINUTE, "v-3", run_id="run-2")
    now = FAILED_AT + 30 * MINUTE

    evaluation = evaluate(state_url, now)

    assert evaluation.requested == [retry(DAY, 1, FAILED_AT)]
    assert evaluation.cursor == {DAY: entry(1, FAILED_AT, now)}


def test_the_second_attempt_waits_twice_the_base_delay_after_the_first_retry_failed(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    first = evaluate(state_url, FAILED_AT + 30 * MINUTE)
    retried_at = FAILED_AT + 32 * MINUTE
    fail(store, DAY, retried_at, "v-1", run_id="retry-1")  # the retry run: v-1 fails again

    early = evaluate(state_url, retried_at + 60 * MINUTE - SECOND, first.result.cursor)
    due = evaluate(state_url, retried_at + 60 * MINUTE, first.result.cursor)

    assert early.requested == []
    assert early.skip_message == (
        f"1 partition(s) with failed rows waiting; next: {DAY} (attempt 2 of 3) at "
        f"{(retried_at + 60 * MINUTE).isoformat()}"
    )
    assert due.requested == [retry(DAY, 2, retried_at)]
    assert due.cursor == {DAY: entry(2, retried_at, retried_at + 60 * MINUTE)}


def test_a_retry_run_that_recorded_nothing_yet_gets_the_next_delay_from_its_request(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    requested_at = FAILED_AT + 40 * MINUTE
    first = evaluate(state_url, requested_at)

    early = evaluate(state_url, requested_at + 60 * MINUTE - SECOND, first.result.cursor)
    due = evaluate(state_url, requested_at + 60 * MINUTE, first.result.cursor)

    assert early.requested == []
    assert due.requested == [retry(DAY, 2, FAILED_AT)]


def test_attempts_stop_at_max_attempts_and_giving_up_is_logged_once(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1", "v-2")
    failed_at, cursor, requested = FAILED_AT, None, []
    for attempt, delay in ((1, 30), (2, 60), (3, 120)):
        evaluation = evaluate(state_url, failed_at + delay * MINUTE, cursor)
        requested += evaluation.requested
        cursor = evaluation.result.cursor
        failed_at += (delay + 1) * MINUTE  # each retry run still fails both rows
        fail(store, DAY, failed_at, "v-1", "v-2", run_id=f"retry-{attempt}")

    waiting = evaluate(state_url, failed_at + 240 * MINUTE - SECOND, cursor)
    giving_up = evaluate(state_url, failed_at + 240 * MINUTE, cursor)
    after = evaluate(state_url, failed_at + timedelta(days=30), giving_up.result.cursor)

    assert [tags["pendo_assets/retry_attempt"] for _, _, tags in requested] == ["1", "2", "3"]
    assert (waiting.requested, waiting.warnings) == ([], [])
    assert waiting.skip_message == (
        f"1 partition(s) with failed rows waiting; next: {DAY} (giving up) at "
        f"{(failed_at + 240 * MINUTE).isoformat()}"
    )
    assert giving_up.requested == []
    assert giving_up.warnings == [
        f"giving up on partition {DAY} after 3 attempts; 2 rows still failing: see "
        "pendo_sync_failures"
    ]
    assert giving_up.cursor[DAY]["gave_up"] is True
    assert (after.requested, after.warnings) == ([], [])
    assert isinstance(after.result, dg.SkipReason)
    assert after.skip_message == (
        "gave up on 1 partition(s) after 3 attempts (see pendo_sync_failures)"
    )


def give_up(store: FailureStore, state_url: str) -> tuple[datetime, str]:
    """Three attempts that each fail again, then the evaluation that gives up: the time of the
    failure it gave up on, and the cursor after it."""
    fail(store, DAY, FAILED_AT, "v-1")
    failed_at, cursor = FAILED_AT, None
    for attempt, delay in ((1, 30), (2, 60), (3, 120)):
        cursor = evaluate(state_url, failed_at + delay * MINUTE, cursor).result.cursor
        failed_at += (delay + 1) * MINUTE
        fail(store, DAY, failed_at, "v-1", run_id=f"retry-{attempt}")
    giving_up = evaluate(state_url, failed_at + 240 * MINUTE, cursor)
    assert giving_up.cursor[DAY]["gave_up"] is True
    return failed_at, giving_up.result.cursor


def test_failures_newer_than_those_given_up_on_start_again_at_attempt_1(
    store: FailureStore, state_url: str
) -> None:
    gave_up_on, cursor = give_up(store, state_url)
    outage = gave_up_on + timedelta(days=2)
    fail(store, DAY, outage, "v-1", "v-7", "v-8", run_id="sensor-run")  # a later run, Pendo down

    early = evaluate(state_url, outage + 30 * MINUTE - SECOND, cursor)
    due = evaluate(state_url, outage + 30 * MINUTE, early.result.cursor)

    assert early.requested == []
    assert early.skip_message == (
        f"1 partition(s) with failed rows waiting; next: {DAY} (attempt 1 of 3) at "
        f"{(outage + 30 * MINUTE).isoformat()}"
    )
    assert early.cursor == {}
    assert due.requested == [retry(DAY, 1, outage)]
    assert due.cursor == {DAY: entry(1, outage, outage + 30 * MINUTE)}


def test_validation_failures_never_request_a_retry(store: FailureStore, state_url: str) -> None:
    fail(store, DAY, FAILED_AT, "v-1", "v-2", retryable=False)

    evaluation = evaluate(state_url, FAILED_AT + timedelta(days=30))

    assert isinstance(evaluation.result, dg.SkipReason)
    assert evaluation.skip_message == (
        "no unresolved retryable failures of sync 'visitor_plans' in pendo_sync_failures"
    )


def test_a_partition_is_retried_for_its_retryable_failures_only(
    store: FailureStore, state_url: str
) -> None:
    store.record_run(
        sync_name=SPEC.name,
        partition_key=DAY,
        run_id="run-1",
        run_started_at=FAILED_AT,
        failures=[
            RowFailure(0, "v-1", "visitorId identifier is missing or empty"),
            RowFailure(1, "v-2", "HTTP 503: unavailable", http_status=503, retryable=True),
        ],
        when=FAILED_AT,
    )
    fail(store, OTHER_DAY, FAILED_AT - MINUTE, "v-3", retryable=False, run_id="run-2")

    evaluation = evaluate(state_url, FAILED_AT + 30 * MINUTE)

    assert evaluation.requested == [retry(DAY, 1, FAILED_AT)]


# -- runs already queued or in progress --------------------------------------------------------


def test_a_partition_with_a_run_queued_or_in_progress_is_held_back(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    fail(store, OTHER_DAY, FAILED_AT, "v-3", run_id="run-2")
    now = FAILED_AT + 30 * MINUTE
    with dg.DagsterInstance.ephemeral() as instance:
        add_run(instance, DAY, dg.DagsterRunStatus.STARTED)
        evaluation = evaluate(state_url, now, instance=instance)

    assert evaluation.requested == [retry(OTHER_DAY, 1, FAILED_AT)]
    assert evaluation.cursor == {OTHER_DAY: entry(1, FAILED_AT, now)}
    assert evaluation.infos == [
        f"held back 1 partition(s) of sync 'visitor_plans' with a run queued or in progress: {DAY}"
    ]


def test_a_held_back_partition_is_requested_once_its_run_has_ended(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    now = FAILED_AT + 30 * MINUTE
    with dg.DagsterInstance.ephemeral() as instance:
        add_run(instance, DAY, dg.DagsterRunStatus.NOT_STARTED)
        held = evaluate(state_url, now, instance=instance)
        [run] = instance.get_runs()
        instance.report_run_canceled(run)
        later = evaluate(state_url, now + MINUTE, instance=instance)

    assert isinstance(held.result, dg.SkipReason)
    assert held.skip_message == (
        f"1 partition(s) held back while a run of them is queued or in progress: {DAY}"
    )
    assert later.requested == [retry(DAY, 1, FAILED_AT)]


def test_finished_runs_and_runs_of_other_syncs_hold_nothing_back(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    with dg.DagsterInstance.ephemeral() as instance:
        add_run(instance, DAY, dg.DagsterRunStatus.FAILURE)
        add_run(instance, DAY, dg.DagsterRunStatus.STARTED, job_name="account_plans_sync")
        evaluation = evaluate(state_url, FAILED_AT + 30 * MINUTE, instance=instance)

    assert evaluation.requested == [retry(DAY, 1, FAILED_AT)]
    assert evaluation.infos == []


def test_a_sync_with_max_attempts_0_never_requests(store: FailureStore, state_url: str) -> None:
    syncs = parse_syncs(
        {
            "start_date": "2026-11-01",
            "syncs": [
                {
                    "name": SPEC.name,
                    "object_type": "visitor_metadata",
                    "source": {"table": "visitors", "partition_column": "updated_at"},
                    "mapping": {"id": "visitorId", "plan": "plan"},
                    "retry": {"max_attempts": 0},
                }
            ],
        }
    )
    fail(store, DAY, FAILED_AT, "v-1")

    evaluation = evaluate(state_url, FAILED_AT + timedelta(days=30), spec=syncs.syncs[0])

    assert isinstance(evaluation.result, dg.SkipReason)
    assert evaluation.skip_message == (
        "retries are off for sync 'visitor_plans' (retry.max_attempts: 0)"
    )


# -- the cursor --------------------------------------------------------------------------------


def test_a_partition_whose_failures_are_resolved_leaves_the_cursor(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    fail(store, OTHER_DAY, FAILED_AT, "v-3", run_id="run-2")
    first = evaluate(state_url, FAILED_AT + 30 * MINUTE)
    succeed(store, DAY, FAILED_AT + 31 * MINUTE, run_id="retry-1")  # v-1 went through

    evaluation = evaluate(state_url, FAILED_AT + 32 * MINUTE, first.result.cursor)

    assert evaluation.requested == []
    assert evaluation.cursor == {OTHER_DAY: entry(1, FAILED_AT, FAILED_AT + 30 * MINUTE)}


def test_a_new_failure_after_resolution_starts_again_from_the_first_attempt(
    store: FailureStore, state_url: str
) -> None:
    fail(store, DAY, FAILED_AT, "v-1")
    first = evaluate(state_url, FAILED_AT + 30 * MINUTE)
    succeed(store, DAY, FAILED_AT + 31 * MINUTE, run_id="retry-1")
    emptied = evaluate(state_url, FAILED_AT + 32 * MINUTE, first.result.cursor)
    failed_again = FAILED_AT + timedelta(days=1)
    fail(store, DAY, failed_again, "v-1", run_id="run-2")

    evaluation = evaluate(state_url, failed_again + 30 * MINUTE, emptied.result.cursor)

    assert emptied.cursor == {}
    assert evaluation.requested == [retry(DAY, 1, failed_again)]


# -- errors ------------------------------------------------------------------------------------


def test_sensor_skips_naming_the_state_database_when_it_cannot_read_it(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'missing-directory' / 'state.db'}"

    evaluation = evaluate(url, FAILED_AT)

    assert isinstance(evaluation.result, dg.SkipReason)
    assert evaluation.skip_message == (
        f"cannot read pendo_sync_failures ({url}): unable to open database file"
    )


# -- end to end: a row the sandbox refused goes out again, alone, with its current value ------


def test_a_retry_sends_only_the_failed_row_with_its_current_value_and_resolves_it(
    materialize_sync: Any,
    sandbox: SandboxServer,
    sqlite_url: str,
    state_url: str,
    sync_day: date,
    stored_failures: Any,
    store: FailureStore,
) -> None:
    engine = sa.create_engine(sqlite_url, poolclass=sa.NullPool)
    visitors = sa.Table(
        "visitors",
        sa.MetaData(),
        Column("id", Text),
        Column("plan", Text),
        Column("updated_at", DateTime),
    )
    with engine.begin() as conn:
        visitors.create(conn)
        conn.execute(
            visitors.insert(),
            [
                {"id": "v-1", "plan": "pro", "updated_at": datetime.combine(sync_day, time(8))},
                {"id": "v-2", "plan": "starter", "updated_at": datetime.combine(sync_day, time(9))},
            ],
        )
    # One batch a row, one at a time, one attempt each: Pendo is down for v-1's, up for v-2's.
    sandbox.script_faults([{"status": 503, "path": CUSTOM_VALUES, "body": {"message": "down"}}])
    first = materialize_sync(SPEC, sync_day, batch_size=1, max_in_flight=1, max_attempts=1)
    [failure] = stored_failures()
    assert (failure["record_id"], failure["retryable"]) == ("v-1", True)
    with engine.begin() as conn:  # v-1 changes in the warehouse meanwhile (same day)
        conn.execute(visitors.update().where(visitors.c.id == "v-1").values(plan="enterprise"))
    engine.dispose()
    sent_before = len(sandbox.state()["requests"])

    sensed = evaluate(state_url, failure["failed_at"].replace(tzinfo=UTC) + 30 * MINUTE)
    [(partition, _, _)] = sensed.requested
    second = materialize_sync(SPEC, date.fromisoformat(partition), batch_size=1, max_in_flight=1)

    assert first.result.success and second.result.success
    assert partition == sync_day.isoformat()
    assert [
        (r["method"], r["path"], r["body"]) for r in sandbox.state()["requests"][sent_before:]
    ] == [
        ("GET", "/api/v1/metadata/schema/visitor", None),
        ("POST", CUSTOM_VALUES, [{"visitorId": "v-1", "values": {"plan": "enterprise"}}]),
    ]
    [resolved] = stored_failures()
    assert resolved["run_id"] == first.run_id
    assert resolved["resolved_at"] is not None
    assert store.unresolved_partitions(SPEC.name) == {}

"""Per sync: the daily schedule ``<name>_sync_daily`` and the sensor ``<name>_warehouse_changes``,
evaluated with ``build_schedule_context`` and ``build_sensor_context`` over a SQLite warehouse
and an ephemeral Dagster instance (whose runs the sensor looks at)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy import Column, DateTime, Text

from pendo_assets.defs.database_resources import SyncStateResource, WarehouseResource
from pendo_assets.defs.factory import build_pendo_definitions
from pendo_assets.defs.resources import PendoResource
from pendo_assets.sync.spec import SourceSpec, SyncSpec

SPEC = SyncSpec(
    name="visitor_plans",
    object_type="visitor_metadata",
    source=SourceSpec(partition_column="updated_at", table="visitors"),
    mapping={"id": "visitorId", "plan": "plan"},
)
TODAY = datetime.now(UTC).date()
START = TODAY - timedelta(days=30)
SECONDS = r"\d{2}:\d{2}:\d{2}"


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute))


def definitions(sqlite_url: str, state_url: str, spec: SyncSpec = SPEC) -> dg.Definitions:
    return build_pendo_definitions(
        [spec],
        start_date=START,
        resources={
            "pendo": PendoResource(),
            "warehouse": WarehouseResource(url=sqlite_url),
            "sync_state": SyncStateResource(url=state_url),
        },
    )


@pytest.fixture
def defs(sqlite_url: str, state_url: str) -> dg.Definitions:
    return definitions(sqlite_url, state_url)


@pytest.fixture
def warehouse(sqlite_url: str) -> Any:
    """The visitors table; call ``warehouse.upsert(id, updated_at)`` to add or change a row."""
    engine = sa.create_engine(sqlite_url)
    table = sa.Table(
        "visitors",
        sa.MetaData(),
        Column("id", Text, primary_key=True),
        Column("plan", Text),
        Column("updated_at", DateTime),
    )
    table.create(engine)

    class Warehouse:
        def upsert(self, visitor_id: str, updated_at: datetime) -> None:
            with engine.begin() as conn:
                conn.execute(table.delete().where(table.c.id == visitor_id))
                conn.execute(
                    table.insert().values(id=visitor_id, plan="pro", updated_at=updated_at)
                )

    yield Warehouse()
    engine.dispose()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """The Dagster instance the sensor sees: no runs unless a test adds them."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


class Evaluation:
    """One evaluation of the change sensor: its result and the INFO lines it logged."""

    def __init__(self, result: Any, infos: list[str], cursor_before: str | None) -> None:
        self.result = result
        self.infos = infos
        self._cursor_before = cursor_before

    @property
    def cursor(self) -> str | None:
        """The cursor after the evaluation (a SkipReason leaves it as it was)."""
        if isinstance(self.result, dg.SkipReason):
            return self._cursor_before
        return self.result.cursor

    @property
    def requested(self) -> list[str]:
        """The partition key of each run request."""
        if isinstance(self.result, dg.SkipReason):
            return []
        return [request.partition_key for request in self.result.run_requests]

    @property
    def run_keys(self) -> list[str]:
        return [request.run_key for request in self.result.run_requests]

    @property
    def skip_message(self) -> str | None:
        if isinstance(self.result, dg.SkipReason):
            return self.result.skip_message
        return self.result.skip_reason.skip_message if self.result.skip_reason else None


class CollectInfo(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def evaluate_sensor(
    defs: dg.Definitions, sqlite_url: str, cursor: str | None, instance: dg.DagsterInstance
) -> Evaluation:
    sensor = defs.resolve_sensor_def("visitor_plans_warehouse_changes")
    resources = {"warehouse": WarehouseResource(url=sqlite_url)}
    collect = CollectInfo()
    with dg.build_sensor_context(cursor=cursor, resources=resources, instance=instance) as context:
        context.log.addHandler(collect)
        result = sensor(context)
    return Evaluation(result, collect.messages, cursor)


def add_run(instance: dg.DagsterInstance, partition: str, status: dg.DagsterRunStatus) -> str:
    """A run of the sync's job for `partition`, in `status`; its run id."""
    run = instance.add_run(
        dg.DagsterRun(
            job_name="visitor_plans_sync",
            run_id=str(uuid.uuid4()),
            tags={"dagster/partition": partition},
            status=status,
        )
    )
    return run.run_id


@contextmanager
def statements_run() -> Iterator[list[tuple[str, Any]]]:
    """Every (SQL, parameters) any engine executes inside the block."""
    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", keep)


# -- the daily schedule ------------------------------------------------------------------------


def test_schedule_runs_the_sync_job_at_a_quarter_past_midnight_utc(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("visitor_plans_sync_daily")

    assert schedule.cron_schedule == "15 0 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "visitor_plans_sync"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_schedule_tick_requests_the_utc_day_that_just_ended_tagged_with_the_sync_partition(
    defs: dg.Definitions,
) -> None:
    schedule = defs.resolve_schedule_def("visitor_plans_sync_daily")
    tick = datetime.combine(days_ago(3), time(0, 15), tzinfo=UTC)

    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))

    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == days_ago(4).isoformat()
    assert request.run_key == days_ago(4).isoformat()
    assert request.tags == {"pendo_assets/sync_partition": f"visitor_plans:{days_ago(4)}"}


def test_schedule_tick_given_in_another_time_zone_still_requests_the_previous_utc_day(
    defs: dg.Definitions,
) -> None:
    schedule = defs.resolve_schedule_def("visitor_plans_sync_daily")
    tick = datetime.combine(days_ago(3), time(0, 15), tzinfo=UTC).astimezone(
        ZoneInfo("America/New_York")
    )  # 19:15 or 20:15 the evening before in New York

    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))

    assert request.partition_key == days_ago(4).isoformat()


def test_schedule_tick_before_the_first_day_has_ended_requests_nothing(
    defs: dg.Definitions,
) -> None:
    schedule = defs.resolve_schedule_def("visitor_plans_sync_daily")
    tick = datetime.combine(START, time(0, 15), tzinfo=UTC)

    result = schedule(dg.build_schedule_context(scheduled_execution_time=tick))

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "no partition of sync 'visitor_plans' has ended yet"


# -- the warehouse-change sensor: definition and first evaluation ------------------------------


def test_sensor_targets_the_sync_job_every_five_minutes_and_starts_stopped(
    defs: dg.Definitions,
) -> None:
    sensor = defs.resolve_sensor_def("visitor_plans_warehouse_changes")

    assert sensor.job_name == "visitor_plans_sync"
    assert sensor.minimum_interval_seconds == 300
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_first_evaluation_requests_the_days_of_the_lookback_window_only(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-old", at(days_ago(30), 12))
    warehouse.upsert("v-1", at(days_ago(5), 9))
    warehouse.upsert("v-2", at(days_ago(2), 7))
    warehouse.upsert("v-3", at(days_ago(1), 23, 59))

    evaluation = evaluate_sensor(defs, sqlite_url, None, instance)

    assert evaluation.requested == [days_ago(2).isoformat(), days_ago(1).isoformat()]
    assert json.loads(evaluation.cursor or "")["high_water"] == f"{days_ago(1)}T23:59:00+00:00"
    assert json.loads(evaluation.cursor or "")["since"] == days_ago(2).isoformat()


def test_run_keys_name_the_partition_and_its_rows_and_runs_are_tagged_with_it(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(2), 7))
    warehouse.upsert("v-2", at(days_ago(2), 8))

    evaluation = evaluate_sensor(defs, sqlite_url, None, instance)

    [request] = evaluation.result.run_requests
    assert re.fullmatch(
        rf"visitor_plans:{days_ago(2)}:2:{days_ago(2)}T08:00:00\+00:00:[0-9a-f]{{16}}",
        request.run_key,
    )
    assert request.tags == {"pendo_assets/sync_partition": f"visitor_plans:{days_ago(2)}"}


def test_first_evaluation_reads_only_the_partition_column_of_the_window(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-old", at(days_ago(30), 12))
    warehouse.upsert("v-2", at(days_ago(2), 7))

    with statements_run() as statements:
        evaluate_sensor(defs, sqlite_url, None, instance)

    [(read, parameters)] = [(sql, p) for sql, p in statements if "visitors" in sql][-1:]
    assert " ".join(read.split()) == (
        "SELECT visitors.updated_at FROM visitors "
        "WHERE visitors.updated_at >= ? AND visitors.updated_at < ?"
    )
    # SQLite returns the DateTime column as text: ISO dates a day wider than [since, today).
    assert parameters == (days_ago(3).isoformat(), (TODAY + timedelta(days=1)).isoformat())


def test_the_window_is_the_syncs_sensor_lookback_days(
    warehouse: Any, sqlite_url: str, state_url: str, instance: dg.DagsterInstance
) -> None:
    defs = definitions(sqlite_url, state_url, replace(SPEC, sensor_lookback_days=5))
    warehouse.upsert("v-1", at(days_ago(6), 9))
    warehouse.upsert("v-2", at(days_ago(5), 9))
    warehouse.upsert("v-3", at(days_ago(1), 9))

    evaluation = evaluate_sensor(defs, sqlite_url, None, instance)

    assert evaluation.requested == [days_ago(5).isoformat(), days_ago(1).isoformat()]


def test_rows_before_the_first_partition_are_not_requested(
    warehouse: Any, sqlite_url: str, state_url: str, instance: dg.DagsterInstance
) -> None:
    defs = definitions(sqlite_url, state_url, replace(SPEC, sensor_lookback_days=60))
    warehouse.upsert("v-ancient", at(START - timedelta(days=1), 12))
    warehouse.upsert("v-1", at(days_ago(2), 12))

    evaluation = evaluate_sensor(defs, sqlite_url, None, instance)

    assert evaluation.requested == [days_ago(2).isoformat()]


# -- later evaluations -------------------------------------------------------------------------


def test_an_evaluation_after_no_change_requests_nothing(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(3), 9))
    warehouse.upsert("v-2", at(days_ago(2), 7))
    warehouse.upsert("v-3", at(days_ago(1), 7))
    first = evaluate_sensor(defs, sqlite_url, None, instance)

    second = evaluate_sensor(defs, sqlite_url, first.cursor, instance)
    third = evaluate_sensor(defs, sqlite_url, second.cursor, instance)

    assert first.requested == [days_ago(2).isoformat(), days_ago(1).isoformat()]
    assert second.requested == []  # days_ago(3) came into view: history, not requested
    assert isinstance(third.result, dg.SkipReason)
    assert third.skip_message == (
        f"no changed rows since {days_ago(3).isoformat()} (sensor_lookback_days: 2)"
    )


def test_a_late_row_with_an_older_partition_value_is_requested_with_a_new_run_key(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(2), 7))
    warehouse.upsert("v-2", at(days_ago(1), 10))
    first = evaluate_sensor(defs, sqlite_url, None, instance)

    warehouse.upsert("v-late", at(days_ago(2), 6))  # commits after the sensor moved past it
    second = evaluate_sensor(defs, sqlite_url, first.cursor, instance)

    assert second.requested == [days_ago(2).isoformat()]
    assert second.run_keys[0] not in first.run_keys
    assert json.loads(second.cursor or "")["high_water"] == f"{days_ago(1)}T10:00:00+00:00"


def test_a_row_at_the_high_water_mark_committed_later_is_requested(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(1), 10))
    first = evaluate_sensor(defs, sqlite_url, None, instance)

    warehouse.upsert("v-2", at(days_ago(1), 10))
    second = evaluate_sensor(defs, sqlite_url, first.cursor, instance)

    assert second.requested == [days_ago(1).isoformat()]


def test_new_and_moved_rows_request_exactly_the_partitions_whose_rows_changed(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(2), 9))
    warehouse.upsert("v-2", at(days_ago(2), 7))
    warehouse.upsert("v-3", at(days_ago(1), 8))
    first = evaluate_sensor(defs, sqlite_url, None, instance)
    settled = evaluate_sensor(defs, sqlite_url, first.cursor, instance)

    warehouse.upsert("v-new", at(days_ago(3), 10))  # inserted late, older than any row seen
    warehouse.upsert("v-3", at(days_ago(1), 9))  # updated within its day
    evaluation = evaluate_sensor(defs, sqlite_url, settled.cursor, instance)

    assert settled.requested == []
    assert evaluation.requested == [days_ago(3).isoformat(), days_ago(1).isoformat()]


def test_rows_of_today_request_nothing_and_move_no_cursor(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(1), 9))
    first = evaluate_sensor(defs, sqlite_url, None, instance)

    warehouse.upsert("v-today", at(TODAY, 0, 1))
    second = evaluate_sensor(defs, sqlite_url, first.cursor, instance)

    assert first.requested == [days_ago(1).isoformat()]
    assert second.requested == []
    assert json.loads(second.cursor or "")["high_water"] == f"{days_ago(1)}T09:00:00+00:00"


def test_a_cursor_of_the_earlier_release_requests_the_window_once(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(2), 9))
    warehouse.upsert("v-2", at(days_ago(1), 9))
    old_cursor = f"{days_ago(1)}T09:00:00+00:00"  # a bare high-water mark

    first = evaluate_sensor(defs, sqlite_url, old_cursor, instance)
    second = evaluate_sensor(defs, sqlite_url, first.cursor, instance)

    assert first.requested == [days_ago(2).isoformat(), days_ago(1).isoformat()]
    assert second.requested == []


# -- runs already queued or in progress --------------------------------------------------------


def test_a_changed_partition_with_a_run_in_progress_is_held_back_until_it_ends(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    warehouse.upsert("v-1", at(days_ago(2), 7))
    warehouse.upsert("v-2", at(days_ago(1), 7))
    run_id = add_run(instance, days_ago(1).isoformat(), dg.DagsterRunStatus.STARTED)

    held = evaluate_sensor(defs, sqlite_url, None, instance)
    still = evaluate_sensor(defs, sqlite_url, held.cursor, instance)
    instance.report_run_canceled(instance.get_run_by_id(run_id))
    after = evaluate_sensor(defs, sqlite_url, still.cursor, instance)

    assert held.requested == [days_ago(2).isoformat()]
    assert held.infos == [
        f"held back 1 changed partition(s) of sync 'visitor_plans' with a run queued or in "
        f"progress: {days_ago(1)}"
    ]
    assert still.requested == []
    assert still.skip_message == held.infos[0]
    assert after.requested == [days_ago(1).isoformat()]


# -- errors ------------------------------------------------------------------------------------


def test_sensor_skips_naming_the_warehouse_when_it_cannot_read_it(
    defs: dg.Definitions, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    evaluation = evaluate_sensor(defs, sqlite_url, None, instance)

    assert isinstance(evaluation.result, dg.SkipReason)
    assert evaluation.skip_message == (
        f"cannot read the warehouse ({sqlite_url}): table 'visitors' not found in the "
        f"warehouse {sqlite_url}"
    )

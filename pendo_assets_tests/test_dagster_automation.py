"""Per sync: the daily schedule ``<name>_sync_daily`` and the sensor ``<name>_warehouse_changes``,
evaluated with ``build_schedule_context`` and ``build_sensor_context``."""

from __future__ import annotations

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
# Dagster's own build_schedule_from_partitioned_job calls this deprecated method internally.
DAGSTER_INTERNAL_DEPRECATION = pytest.mark.filterwarnings(
    "ignore:Function `JobDefinition.run_request_for_partition` is deprecated:DeprecationWarning"
)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute))


@pytest.fixture
def defs(sqlite_url: str, state_url: str) -> dg.Definitions:
    return build_pendo_definitions(
        [SPEC],
        start_date=START,
        resources={
            "pendo": PendoResource(),
            "warehouse": WarehouseResource(url=sqlite_url),
            "sync_state": SyncStateResource(url=state_url),
        },
    )


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


def evaluate_sensor(defs: dg.Definitions, sqlite_url: str, cursor: str | None) -> Any:
    sensor = defs.resolve_sensor_def("visitor_plans_warehouse_changes")
    resources = {"warehouse": WarehouseResource(url=sqlite_url)}
    with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
        return sensor(context)


def requested(result: Any) -> list[str]:
    return [request.partition_key for request in result.run_requests]


# -- the daily schedule ------------------------------------------------------------------------


def test_schedule_runs_the_sync_job_at_a_quarter_past_midnight_utc(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("visitor_plans_sync_daily")

    assert schedule.cron_schedule == "15 0 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "visitor_plans_sync"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


@DAGSTER_INTERNAL_DEPRECATION
def test_schedule_tick_requests_the_utc_day_that_just_ended(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("visitor_plans_sync_daily")
    tick = datetime.combine(days_ago(3), time(0, 15), tzinfo=UTC)

    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))

    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == days_ago(4).isoformat()
    assert request.run_key == days_ago(4).isoformat()


@DAGSTER_INTERNAL_DEPRECATION
def test_schedule_tick_given_in_another_time_zone_still_requests_the_previous_utc_day(
    defs: dg.Definitions,
) -> None:
    schedule = defs.resolve_schedule_def("visitor_plans_sync_daily")
    tick = datetime.combine(days_ago(3), time(0, 15), tzinfo=UTC).astimezone(
        ZoneInfo("America/New_York")
    )  # 19:15 or 20:15 the evening before in New York

    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))

    assert request.partition_key == days_ago(4).isoformat()


# -- the warehouse-change sensor ----------------------------------------------------------------


def test_sensor_targets_the_sync_job_every_five_minutes_and_starts_stopped(
    defs: dg.Definitions,
) -> None:
    sensor = defs.resolve_sensor_def("visitor_plans_warehouse_changes")

    assert sensor.job_name == "visitor_plans_sync"
    assert sensor.minimum_interval_seconds == 300
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_first_evaluation_requests_every_partition_with_rows_and_sets_the_cursor(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str
) -> None:
    warehouse.upsert("v-1", at(days_ago(5), 9))
    warehouse.upsert("v-2", at(days_ago(3), 7))
    warehouse.upsert("v-3", at(days_ago(3), 22))
    warehouse.upsert("v-4", at(days_ago(1), 23, 59))

    result = evaluate_sensor(defs, sqlite_url, cursor=None)

    assert isinstance(result, dg.SensorResult)
    assert requested(result) == [days_ago(n).isoformat() for n in (5, 3, 1)]
    assert result.cursor == f"{days_ago(1).isoformat()}T23:59:00+00:00"
    assert [r.run_key for r in result.run_requests] == [
        f"visitor_plans:{days_ago(n).isoformat()}:{result.cursor}" for n in (5, 3, 1)
    ]


def test_rows_before_the_first_partition_are_not_requested(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str
) -> None:
    warehouse.upsert("v-ancient", at(START - timedelta(days=1), 12))
    warehouse.upsert("v-1", at(days_ago(2), 12))

    result = evaluate_sensor(defs, sqlite_url, cursor=None)

    assert requested(result) == [days_ago(2).isoformat()]
    assert result.cursor == f"{days_ago(2).isoformat()}T12:00:00+00:00"


def test_evaluation_with_the_cursor_of_the_last_requests_nothing(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str
) -> None:
    warehouse.upsert("v-1", at(days_ago(5), 9))
    warehouse.upsert("v-2", at(days_ago(3), 7))
    cursor = evaluate_sensor(defs, sqlite_url, cursor=None).cursor

    result = evaluate_sensor(defs, sqlite_url, cursor=cursor)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == f"no rows beyond cursor {cursor!r}"


def test_new_and_updated_rows_request_exactly_the_partitions_they_fall_in(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str
) -> None:
    warehouse.upsert("v-1", at(days_ago(6), 9))
    warehouse.upsert("v-2", at(days_ago(5), 7))
    warehouse.upsert("v-3", at(days_ago(5), 8))
    cursor = evaluate_sensor(defs, sqlite_url, cursor=None).cursor

    warehouse.upsert("v-new", at(days_ago(4), 10))  # inserted
    warehouse.upsert("v-2", at(days_ago(2), 6))  # updated: moves to a later day
    result = evaluate_sensor(defs, sqlite_url, cursor=cursor)

    assert requested(result) == [days_ago(4).isoformat(), days_ago(2).isoformat()]
    assert result.cursor == f"{days_ago(2).isoformat()}T06:00:00+00:00"


def test_rows_of_today_request_nothing_and_leave_the_cursor_alone(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str
) -> None:
    warehouse.upsert("v-1", at(days_ago(3), 9))
    cursor = evaluate_sensor(defs, sqlite_url, cursor=None).cursor

    warehouse.upsert("v-today", at(TODAY, 0, 1))
    result = evaluate_sensor(defs, sqlite_url, cursor=cursor)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == f"no rows beyond cursor {cursor!r}"


def test_rows_of_today_move_no_cursor_so_earlier_days_are_requested_once(
    defs: dg.Definitions, warehouse: Any, sqlite_url: str
) -> None:
    warehouse.upsert("v-1", at(days_ago(3), 9))
    warehouse.upsert("v-today", at(TODAY, 0, 1))
    first = evaluate_sensor(defs, sqlite_url, cursor=None)

    warehouse.upsert("v-today-2", at(TODAY, 0, 2))
    second = evaluate_sensor(defs, sqlite_url, cursor=first.cursor)

    assert requested(first) == [days_ago(3).isoformat()]
    assert first.cursor == f"{at(days_ago(3), 9).isoformat()}+00:00"
    assert isinstance(second, dg.SkipReason)


def test_sensor_skips_naming_the_warehouse_when_it_cannot_read_it(
    defs: dg.Definitions, sqlite_url: str
) -> None:
    result = evaluate_sensor(defs, sqlite_url, cursor=None)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == (
        f"cannot read the warehouse ({sqlite_url}): table 'visitors' not found in the "
        f"warehouse {sqlite_url}"
    )
